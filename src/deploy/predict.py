"""predict.py's logic: top-5 classes of one video, from a checkpoint, an ONNX or a MINDIR model.

Same windows and preprocessing as evaluation (src.data.preprocess); the video score is the mean of
the windows' softmax outputs, as in src.metrics.
"""
import json
from pathlib import Path

import numpy as np

from src.errors import UserError


def read_labels(path):
    """Class names from an annotation JSON ("labels") or a text file ("Name" or "1 Name" per line)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"labels file {path} not found: pass an annotation JSON or a text file of class names")
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix.lower() == ".json":
        try:
            return [str(name) for name in json.loads(text)["labels"]]
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(f"{path} is not an annotation JSON with a 'labels' list ({err})") from None
    names = []
    for line in text.splitlines():
        parts = line.strip().split(maxsplit=1)
        if not parts:
            continue
        # classInd.txt style "1 ApplyEyeMakeup": drop the 1-based index
        names.append(parts[1] if len(parts) == 2 and parts[0].isdigit() else line.strip())
    if not names:
        raise UserError(f"{path} holds no class names")
    return names


def video_clips(path, cfg):
    """Every evaluation window of the video at ``path`` as float32 [n, 3, T, H, W]."""
    from src.data.preprocess import eval_clip, eval_windows, read_video_frames

    source = read_video_frames(path)
    windows = eval_windows(len(source), cfg)
    if not windows:
        raise UserError(f"{path} gave no clip windows ({len(source)} frames)")
    return np.stack([eval_clip(source, indices, cfg) for indices in windows]).astype(np.float32), len(source)


def check_one_model(ckpt_file="", onnx="", mindir=""):
    given = [name for name, value in (("--ckpt_file", ckpt_file), ("--onnx", onnx), ("--mindir", mindir)) if value]
    if len(given) != 1:
        raise UserError("pass exactly one model: --ckpt_file=X.ckpt, --onnx=X.onnx or --mindir=X.mindir"
                        + (f" (got {', '.join(given)})" if given else ""))


def make_predictor(cfg, ckpt_file="", onnx="", mindir=""):
    from src.deploy import backends

    check_one_model(ckpt_file, onnx, mindir)
    if onnx:
        return backends.onnx_predictor(onnx, "GPU" if cfg.device_target == "GPU" else "CPU")
    if mindir:
        return backends.mindir_predictor(mindir)
    return backends.checkpoint_predictor(cfg, ckpt_file)


def predict_video(predict, path, cfg, top=5):
    """(scores [n_classes], n_frames, n_windows): mean softmax over the video's windows."""
    clips, n_frames = video_clips(path, cfg)
    batch = max(1, int(cfg.get("eval_batch_size", 16)))
    probs = np.concatenate([predict(clips[i:i + batch]) for i in range(0, len(clips), batch)])
    return probs.mean(axis=0), n_frames, len(clips)


def format_top(scores, names, k=5):
    from src.metrics import topk_indices

    if names is not None and len(names) != len(scores):
        raise UserError(f"the labels list {len(names)} classes but the model outputs {len(scores)}: "
                        f"pass the labels of the dataset the model was trained on")
    lines = []
    for rank, c in enumerate(topk_indices(scores, k), 1):
        name = names[c] if names is not None else f"class {c}"
        lines.append(f"{rank}. {name}  {scores[c]:.4f}")
    return lines
