"""predict.py's logic: top-5 classes of one video, from a checkpoint, an ONNX or a MINDIR model.

Same windows and preprocessing as evaluation (src.data.presets); the video score is the mean of
the windows' softmax outputs, as in src.metrics.
"""
import json
from pathlib import Path

import numpy as np

from src.data.layout import open_video
from src.data.presets import ClipSpec, eval_clip, eval_views
from src.inference.predictors import checkpoint_predictor, clip_shape, mindir_predictor, onnx_predictor
from src.errors import UserError
from src.runtime import onnx_device
from src.metrics import topk_indices


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


def clip_views(path, spec: ClipSpec):
    """(source, views) of the video at ``path``: the evaluation views (windows x crops) of its frames, by the clip
    recipe ``spec`` (ClipSpec.of the config's data and evaluation sections)."""
    source = open_video(path)
    views = eval_views(len(source), spec)
    if not views:
        raise UserError(f"{path} gave no clip windows ({len(source)} frames)")
    return source, views


def view_batches(source, views, spec, batch):
    """float32 [b, 3, T, H, W] micro-batches of the views, made one batch at a time (memory stays bounded)."""
    for start in range(0, len(views), batch):
        yield np.stack([eval_clip(source, numbers, spec, crop) for numbers, crop in views[start:start + batch]])


def check_one_model(ckpt_file="", onnx_path="", mindir_path=""):
    given = [name for name, value in (("--ckpt_file", ckpt_file), ("--onnx_path", onnx_path),
                                      ("--mindir_path", mindir_path)) if value]
    if len(given) != 1:
        raise UserError("pass exactly one model: --ckpt_file=X.ckpt, --onnx_path=X.onnx or --mindir_path=X.mindir"
                        + (f" (got {', '.join(given)})" if given else ""))


def make_predictor(path, kind, runtime, arch, data, device_target="CPU", device_given=False):
    """predict() over the model at ``path`` (resolved by the entry script) of ``kind`` (checkpoint, onnx, mindir),
    a network of ``arch`` taking ``data``'s clips. An ONNX model runs where src.runtime.onnx_device puts it
    (``device_target``; ``device_given``: the command line named it)."""
    if kind == "onnx":
        return onnx_predictor(path, onnx_device(device_target, device_given), clip_shape(arch, data))
    if kind == "mindir":
        return mindir_predictor(path, clip_shape(arch, data))
    return checkpoint_predictor(arch, path, runtime.conv_impl, runtime.infer_precision)


def predict_clips(predict, path, spec: ClipSpec, batch):
    """(scores [n_classes], n_frames, n_views) of the video at ``path``: the mean softmax over its views
    (clip_views; src.metrics' rule), ``batch`` views at a time."""
    source, views = clip_views(path, spec)
    total = None
    for clips in view_batches(source, views, spec, batch):
        probs = np.asarray(predict(clips), np.float64).sum(axis=0)
        total = probs if total is None else total + probs
    return (total / len(views)).astype(np.float32), len(source), len(views)


def format_top(scores, names, k=5):
    if names is not None and len(names) != len(scores):
        raise UserError(f"the labels list {len(names)} classes but the model outputs {len(scores)}: "
                        f"pass the labels of the dataset the model was trained on")
    lines = []
    for rank, c in enumerate(topk_indices(scores, k), 1):
        name = names[c] if names is not None else f"class {c}"
        lines.append(f"{rank}. {name}  {scores[c]:.4f}")
    return lines
