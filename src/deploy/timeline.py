"""predict.py --timeline: what happens when in a long video. Per window: its frames, its start and end time
and its top-k classes (the mean softmax over the window's crops), as CSV; and a PNG of the top classes'
probabilities over time. Views are decoded and run one micro-batch at a time."""
import csv
from pathlib import Path

import cv2
import numpy as np

from src.atomic import atomic_output
from src.deploy.predict import clip_views, view_batches
from src.metrics import topk_indices

DEFAULT_FOLDER_FPS = 25.0


def video_fps(path, fps=0.0):
    """Frames per second: ``fps`` when given, else the video file's, else DEFAULT_FOLDER_FPS (frame folders)."""
    if fps:
        return float(fps)
    if Path(path).is_file():
        cap = cv2.VideoCapture(str(path))
        rate = cap.get(cv2.CAP_PROP_FPS)
        cap.release()
        if rate and rate > 0:
            return float(rate)
    return DEFAULT_FOLDER_FPS


def window_scores(predict, path, spec, batch):
    """(list of (frame numbers, probabilities [n_classes]) per window, n_frames) of the video at ``path``: its
    views by the clip recipe ``spec`` (predict.clip_views), ``batch`` at a time."""
    source, views = clip_views(path, spec)
    probs = np.concatenate([predict(clips) for clips in view_batches(source, views, spec, batch)])
    windows = []
    for i in range(0, len(views), spec.test_crops):  # the crops of one window are consecutive views
        windows.append((views[i][0], probs[i:i + spec.test_crops].astype(np.float64).mean(axis=0)))
    return windows, len(source)


def write_timeline(windows, names, fps, csv_path, k=5):
    """The CSV (window, first/last frame, start/end seconds, top-k classes with probabilities) and its PNG
    next to it (``.png``); returns the two paths."""
    csv_path = Path(csv_path)
    k = min(k, len(windows[0][1]))
    header = ["window", "first_frame", "last_frame", "start_s", "end_s"]
    header += [f"{kind}{r}" for r in range(1, k + 1) for kind in ("class", "p")]
    with atomic_output(csv_path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for i, (numbers, scores) in enumerate(windows):
                top = topk_indices(scores, k)
                row = [i, min(numbers), max(numbers), f"{(min(numbers) - 1) / fps:.3f}", f"{max(numbers) / fps:.3f}"]
                for c in top:
                    row += [names[c] if names else f"class {c}", f"{scores[c]:.4f}"]
                writer.writerow(row)
    png = csv_path.with_suffix(".png")
    plot_timeline(windows, names, fps, png, k)
    return csv_path, png


def plot_timeline(windows, names, fps, path, k):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = np.stack([s for _, s in windows])
    centres = [(min(n) - 1 + max(n)) / 2 / fps for n, _ in windows]
    classes = topk_indices(scores.mean(axis=0), k)
    fig, ax = plt.subplots(figsize=(10, 3.5))
    for c in classes:
        ax.plot(centres, scores[:, c], marker="o", ms=3, label=names[c] if names else f"class {c}")
    ax.set(xlabel="time (s)", ylabel="probability", ylim=(0, 1), title="top classes over time")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
