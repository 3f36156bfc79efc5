"""predict.py --annotate: the input's frames with the model's top classes drawn on each (name, probability and a
bar per class, as MMAction2's demo video), written atomically (src.atomic) as MPEG-4 Part 2 (``mp4v``) in an
.mp4, or Motion-JPEG in an .avi.

Which scores a frame shows, for a file and for a stream alike: those of the first window (in order) that ends
at or after it, so every frame is labelled by a window that contains it or, past the last window, by the last
one. Frames smaller than MIN_SIDE pixels on their shorter side are enlarged so that the text stays readable.
"""
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from src.atomic import atomic_output
from src.errors import UserError
from src.metrics import topk_indices

FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}
MIN_SIDE = 240
TOP = 3
_CHUNK = 32  # frames decoded at a time when annotating a file


def check_output(path) -> Path:
    """The --annotate path, refused with a UserError unless it ends in a suffix we can write."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in FOURCC:
        raise UserError(f"--annotate={path}: write an .mp4 (mp4v) or an .avi (MJPG)")
    return path


def class_name(names, c):
    return names[c] if names else f"class {c}"


def draw_scores(frame, scores, names, k=TOP):
    """A copy of the BGR ``frame`` (enlarged when small) with the top-``k`` classes of ``scores`` drawn at its
    top left: a dark panel, one line of name and probability per class, and a bar as long as the probability."""
    height, width = frame.shape[:2]
    if min(height, width) < MIN_SIDE:
        factor = MIN_SIDE / min(height, width)
        frame = cv2.resize(frame, (round(width * factor), round(height * factor)), interpolation=cv2.INTER_LINEAR)
    else:
        frame = frame.copy()
    if scores is None:
        return frame
    height, width = frame.shape[:2]
    scale = max(0.4, min(height, width) / 600)
    line = int(28 * scale / 0.5)
    top = topk_indices(scores, min(k, len(scores)))
    panel = frame[:line * len(top) + line // 3, :]
    panel[:] = (panel * 0.4).astype(np.uint8)  # darken behind the text
    bar_width = width - 2 * (line // 3)
    for row, c in enumerate(top):
        y = line * (row + 1)
        cv2.rectangle(frame, (line // 3, y - line + 4), (line // 3 + int(bar_width * float(scores[c])), y - 2),
                      (0, 140, 255), cv2.FILLED)
        text = f"{class_name(names, c)} {float(scores[c]):.2f}"
        cv2.putText(frame, text, (line // 3 + 2, y - line // 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                    max(1, int(scale * 2)), cv2.LINE_AA)
    return frame


class AnnotatedVideo:
    """The frames of one output video, drawn and written in order; the writer opens at the first frame (its
    size)."""

    def __init__(self, tmp, fps, names, fourcc):
        self.tmp, self.fps, self.names, self.fourcc = Path(tmp), float(fps), names, fourcc
        self.frames = 0
        self._writer = None

    def write(self, frame, scores):
        drawn = draw_scores(frame, scores, self.names)
        if self._writer is None:
            size = (drawn.shape[1], drawn.shape[0])
            self._writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, size)
            if not self._writer.isOpened():
                raise UserError(f"OpenCV cannot write {self.fourcc} video here: use --annotate=OUT.avi (MJPG)")
        self._writer.write(drawn)
        self.frames += 1

    def close(self):
        if self._writer is not None:
            self._writer.release()
            self._writer = None


@contextmanager
def annotated_video(path, fps, names):
    """``with annotated_video(p, fps, names) as video: video.write(frame, scores)``: ``p`` appears complete, or
    not at all (an error on the way leaves no file)."""
    path = check_output(path)
    with atomic_output(path) as tmp:
        video = AnnotatedVideo(tmp, fps, names, FOURCC[path.suffix.lower()])
        try:
            yield video
        finally:
            video.close()
        if not video.frames:
            raise UserError(f"no frames to write to {path}")


def frame_scores(windows):
    """``scores_for(number)``: the scores of the first window ending at or after frame ``number`` (the last
    window's past the end); ``windows`` is [(frame numbers, scores)] in order, asked for increasing numbers."""
    ends = [max(numbers) for numbers, _ in windows]
    state = {"i": 0}

    def scores_for(number):
        while state["i"] < len(windows) - 1 and ends[state["i"]] < number:
            state["i"] += 1
        return windows[state["i"]][1] if windows else None

    return scores_for


def annotate_file(source, windows, names, fps, path):
    """Write every frame of ``source`` (a VideoFile / FrameFolder) with its window's scores drawn on it."""
    scores_for = frame_scores(windows)
    with annotated_video(path, fps, names) as video:
        for first in range(1, len(source) + 1, _CHUNK):
            numbers = list(range(first, min(first + _CHUNK, len(source) + 1)))
            frames, _ = source.read(numbers)
            for number, frame in zip(numbers, frames):
                video.write(frame, scores_for(number))
    return video.frames
