"""Sliding-window evaluation shared by eval.py, eval_onnx.py, in-training evaluation and 310 post-processing.

Any backend is a ``predict(clips: float32 [b,3,T,H,W]) -> probabilities [b, n_classes]`` function; the
dataset, the aggregation and the metric are the same for all of them.
"""
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from src.metrics import VideoAccumulator, confusion_matrix, softmax

log = logging.getLogger("resnet3d")


def mindspore_predictor(net):
    """predict() over a MindSpore network that outputs logits (softmax applied here)."""
    import mindspore as ms

    net.set_train(False)

    def predict(clips):
        return softmax(net(ms.Tensor(clips)).asnumpy())

    return predict


def run_evaluation(predict, eval_data, ignore=True, progress=True):
    """Run ``predict`` over every window of every video. Returns (Accuracy, VideoAccumulator).

    ``eval_data`` is what src.data.datasets.create_eval_dataset returns: (dataset, index) with
    ``index.videos`` = [(video_id, label_index)] in video_index order.
    """
    dataset, index = eval_data
    acc = VideoAccumulator([label for _, label in index.videos])
    total = dataset.get_dataset_size()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="eval", unit="batch", leave=False)
    start = time.time()
    for batch in dataset.create_dict_iterator(num_epochs=1, output_numpy=True):
        probs = predict(batch["clip"])
        acc.add(probs, batch["label"], batch["video_index"], batch["window_index"])
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    result = acc.compute(ignore=ignore)
    log.info("evaluated %d clips of %d videos in %.1f s", result.n_clips, result.n_ground_truth,
             time.time() - start)
    return result, acc


def _write_json(path, obj):
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def save_eval_outputs(result_path, prefix, result, acc, index):
    """Per-clip and per-video JSON and a confusion-matrix PNG in ``result_path``. Returns the paths."""
    out = Path(result_path)
    out.mkdir(parents=True, exist_ok=True)
    names = list(index.class_names)
    probs, labels, vidx, widx = acc.arrays()
    clips = [{"video": index.videos[v][0], "window": int(w), "label": names[int(lab)],
              "pred": names[int(p.argmax())], "score": float(p.max())}
             for p, lab, v, w in zip(probs, labels, vidx, widx)]
    scores, _ = acc.video_scores()
    videos = {}
    for i, ((vid, label), pred) in enumerate(zip(index.videos, result.video_predictions)):
        videos[vid] = {"label": names[label], "top5": None if pred is None else
                       [[names[c], float(scores[i, c])] for c in pred]}
    summary = {k: v for k, v in result.to_dict().items() if k != "video_predictions"}
    clip_path, video_path = out / f"{prefix}_clips.json", out / f"{prefix}_videos.json"
    _write_json(clip_path, clips)
    _write_json(video_path, {"summary": summary, "line": result.line(), "videos": videos})
    cm = confusion_matrix([lab for _, lab in index.videos], result.video_predictions, len(names))
    png = out / f"{prefix}_confusion.png"
    plot_confusion(cm, names, png, title=result.line())
    return clip_path, video_path, png


def plot_confusion(cm, names, path, title=""):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(names)
    size = min(4 + n * 0.25, 30)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    if n <= 30:
        ax.set_xticks(range(n), names, rotation=90, fontsize=8)
        ax.set_yticks(range(n), names, fontsize=8)
        for (i, j), v in np.ndenumerate(cm):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                        color="white" if v > cm.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    tmp = Path(path).with_name(f".{Path(path).name}.tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)
