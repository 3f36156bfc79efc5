"""The files an evaluation leaves in the result folder: per-clip and per-video JSON, a per-class CSV and a
confusion matrix."""
import csv

import numpy as np

from src.atomic import atomic_output, write_json
from src.metrics import confusion_matrix, per_class_rows


def save_eval_outputs(run_dir, tag, result, acc, index):
    """``<dataset>_<tag>_clips.json``, ``_videos.json``, ``_per_class.csv`` (class, videos, top-1, top-5, most
    confused with) and ``_confusion.png`` in ``run_dir``. Returns the paths."""
    run_dir.make()
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
    clip_path = write_json(run_dir.eval_output(tag, "clips.json"), clips, indent=1)
    video_path = write_json(run_dir.eval_output(tag, "videos.json"),
                            {"summary": summary, "line": result.line(), "videos": videos}, indent=1)
    per_class = run_dir.eval_output(tag, "per_class.csv")
    rows = per_class_rows([lab for _, lab in index.videos], result.video_predictions, names)
    with atomic_output(per_class) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({**r, "top1": f"{r['top1']:.4f}", "top5": f"{r['top5']:.4f}"} for r in rows)
    cm = confusion_matrix([lab for _, lab in index.videos], result.video_predictions, len(names))
    png = run_dir.eval_output(tag, "confusion.png")
    plot_confusion(cm, names, png, title=result.line())
    return clip_path, video_path, per_class, png


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
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
