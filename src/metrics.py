"""Clip and video accuracy: the one metric implementation behind eval, ONNX eval, 310 post-processing
and prediction.

A video's score is the mean of its clips' softmax outputs. ``clip`` is top-1 over all clips; top-1 /
top-5 are over videos. With ``ignore`` (the original's default), videos without any clip prediction are
left out of the video denominator; they are always counted and reported as missing.
"""
from dataclasses import asdict, dataclass, field

import numpy as np


def softmax(logits, axis=-1):
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


def topk_indices(scores, k):
    """Indices of the k largest scores per row, best first (ties: lower index first)."""
    scores = np.asarray(scores)
    k = min(k, scores.shape[-1])
    return np.argsort(-scores, axis=-1, kind="stable")[..., :k]


@dataclass
class Accuracy:
    clip: float
    top1: float
    top5: float
    n_clips: int
    n_ground_truth: int
    n_predicted: int
    n_missing: int
    mean_class: float = 0.0  # mean over classes of the per-class video top-1
    loss: float = 0.0        # mean cross-entropy of the clips (the plateau schedule follows it)
    views: str = ""          # e.g. "10 clips x 3 crops"; empty for the original's protocol
    video_predictions: list = field(default_factory=list, repr=False)  # per video: top-5 class indices or None

    def line(self):
        """The original suite's line, e.g. ``clip: 88.8% top-1: 92.7%  top-5: 99.3%``, with the views named
        when they are not the original's (``  (10 clips x 3 crops)``)."""
        line = f"clip: {self.clip * 100:.1f}% top-1: {self.top1 * 100:.1f}%  top-5: {self.top5 * 100:.1f}%"
        return f"{line}  ({self.views})" if self.views else line

    def count_line(self):
        return (f"videos: ground truth {self.n_ground_truth}, predicted {self.n_predicted}, "
                f"missing {self.n_missing}; clips: {self.n_clips}")

    def report(self):
        """What every evaluation tool prints: the original's line, the mean class accuracy, the counts."""
        return f"{self.line()}\nmean class accuracy: {self.mean_class * 100:.1f}%\n{self.count_line()}"

    def to_dict(self):
        return asdict(self)


class VideoAccumulator:
    """Collects clip probabilities batch by batch and aggregates them per video."""

    def __init__(self, video_labels):
        self.video_labels = np.asarray(video_labels, dtype=np.int64)
        self.probs, self.labels, self.video_index, self.window_index = [], [], [], []

    def add(self, probs, labels, video_index, window_index=None):
        probs = np.asarray(probs, dtype=np.float32)
        self.probs.append(probs)
        self.labels.append(np.asarray(labels, dtype=np.int64).reshape(-1))
        self.video_index.append(np.asarray(video_index, dtype=np.int64).reshape(-1))
        if window_index is None:
            window_index = np.full(len(probs), -1)
        self.window_index.append(np.asarray(window_index, dtype=np.int64).reshape(-1))

    def arrays(self):
        if not self.probs:
            return np.zeros((0, 1), np.float32), *(np.zeros(0, np.int64),) * 3
        return (np.concatenate(self.probs), np.concatenate(self.labels), np.concatenate(self.video_index),
                np.concatenate(self.window_index))

    def video_scores(self):
        """(n_videos, n_classes) mean clip probabilities; rows of videos without clips are NaN."""
        probs, _, vidx, _ = self.arrays()
        n_videos = len(self.video_labels)
        sums = np.zeros((n_videos, probs.shape[1]), np.float64)
        counts = np.bincount(vidx, minlength=n_videos)[:n_videos] if len(vidx) else np.zeros(n_videos, int)
        np.add.at(sums, vidx, probs)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = sums / counts[:, None]
        return scores, counts

    def compute(self, ignore=True, views=""):
        return compute_accuracy(*self.arrays()[:3], self.video_labels, ignore, views)


def compute_accuracy(clip_probs, clip_labels, clip_video_index, video_labels, ignore=True, views=""):
    clip_probs = np.asarray(clip_probs, dtype=np.float32)
    clip_labels = np.asarray(clip_labels).reshape(-1)
    video_labels = np.asarray(video_labels).reshape(-1)
    acc = VideoAccumulator(video_labels)
    acc.add(clip_probs, clip_labels, clip_video_index)
    n_clips = len(clip_labels)
    clip_acc = float((clip_probs.argmax(axis=1) == clip_labels).mean()) if n_clips else 0.0
    scores, counts = acc.video_scores()
    predicted = counts > 0
    top5 = topk_indices(np.nan_to_num(scores, nan=-1.0), 5)
    hit1 = predicted & (top5[:, 0] == video_labels)
    hit5 = predicted & (top5 == video_labels[:, None]).any(axis=1)
    n_gt, n_pred = len(video_labels), int(predicted.sum())
    denom = n_pred if ignore else n_gt
    preds = [top5[i].tolist() if predicted[i] else None for i in range(n_gt)]
    labelled = clip_labels >= 0
    loss = float(-np.log(np.maximum(clip_probs[labelled, clip_labels[labelled]], 1e-12)).mean()) \
        if labelled.any() else 0.0
    counted = predicted if ignore else np.ones(n_gt, bool)  # the videos in the top-1 denominator
    classes = np.unique(video_labels[counted & (video_labels >= 0)])  # -1: an unlabelled video is no class
    per_class = [hit1[counted & (video_labels == c)].mean() for c in classes]
    return Accuracy(clip=clip_acc, top1=float(hit1.sum() / denom) if denom else 0.0,
                    top5=float(hit5.sum() / denom) if denom else 0.0, n_clips=n_clips, n_ground_truth=n_gt,
                    n_predicted=n_pred, n_missing=n_gt - n_pred,
                    mean_class=float(np.mean(per_class)) if per_class else 0.0, loss=loss, views=views,
                    video_predictions=preds)


def per_class_rows(video_labels, video_predictions, class_names):
    """Rows (class, videos, top-1, top-5, most confused with) over the videos that have a prediction."""
    rows = []
    video_labels = np.asarray(video_labels)
    for c, name in enumerate(class_names):
        preds = [p for label, p in zip(video_labels, video_predictions) if label == c and p is not None]
        wrong = np.bincount([p[0] for p in preds if p[0] != c], minlength=len(class_names))
        confused = class_names[int(wrong.argmax())] if wrong.any() else ""  # ties: the lower class index
        n = len(preds)
        rows.append({"class": name, "videos": n,
                     "top1": sum(p[0] == c for p in preds) / n if n else 0.0,
                     "top5": sum(c in p for p in preds) / n if n else 0.0, "most_confused_with": confused})
    return rows


def confusion_matrix(video_labels, video_predictions, n_classes):
    """Counts [true, predicted] over the videos that have a prediction."""
    cm = np.zeros((n_classes, n_classes), np.int64)
    for label, pred in zip(video_labels, video_predictions):
        if pred is not None:
            cm[int(label), int(pred[0])] += 1
    return cm
