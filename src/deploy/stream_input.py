"""The input side of predict.py --stream: the source (a camera, a URL OpenCV's FFmpeg opens, a video file), the
reader thread that numbers its frames from 1 (as a file's) into a :class:`FrameRing`, and the windows
(:class:`StreamWindows`: presets.eval_windows' with test_clips 0) the inference loop of src.deploy.stream takes
from the ring, handed over with VideoFile's interface (:class:`RingFrames`) so that presets.eval_clip makes a
window's clips exactly as from the file.

The ring either holds frames the loop still needs (the reader waits: no window is dropped) or keeps only the
newest (a real-time source never waits for the loop).
"""
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

import cv2

from src.data.presets import ClipSpec, eval_windows
from src.data.video import shrink_frames
from src.errors import UserError

DEFAULT_FPS = 25.0  # when the source does not say (many cameras and MJPEG streams)
NETWORK_TIMEOUT_MS = 10_000  # a URL that does not open, or sends nothing, for this long has broken
REALTIME_VALUES = ("auto", "true", "false", "yes", "no", "1", "0", "on", "off")
POLL_S = 0.1  # how often a waiting thread looks at Ctrl-C and the end of the stream


@dataclass(frozen=True)
class StreamSource:
    kind: str  # "camera", "url" or "file"
    target: int | str

    def __str__(self):
        return f"camera {self.target}" if self.kind == "camera" else str(self.target)


def parse_source(text) -> StreamSource:
    """--stream's value: a camera index (an integer), a URL (scheme://...) or a video file."""
    text = str(text).strip()
    if text.isdigit():
        return StreamSource("camera", int(text))
    if "://" in text:
        return StreamSource("url", text)
    path = Path(text).expanduser()
    if path.is_dir():
        raise UserError(f"--stream={text} is a folder: classify a frame folder with --video={text}")
    if not path.is_file():
        raise UserError(f"--stream={text} is neither a camera index, a URL (http://, rtsp://, ...) nor a video file")
    return StreamSource("file", str(path))


def open_capture(source: StreamSource):
    """An opened cv2.VideoCapture of ``source`` (FFmpeg for URLs and files, with a timeout on URLs)."""
    if source.kind == "camera":
        cap = cv2.VideoCapture(source.target)
    else:
        params = []
        if source.kind == "url":
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, NETWORK_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                      NETWORK_TIMEOUT_MS]
        cap = cv2.VideoCapture(source.target, cv2.CAP_FFMPEG, params)
    if not cap.isOpened():
        cap.release()
        hints = {"camera": "check the index (ls /dev/video*) and that no other program holds the camera",
                 "url": "check the address, that the server is up, and that OpenCV's FFmpeg reads the format",
                 "file": "the file is not a video OpenCV's FFmpeg can decode"}
        raise UserError(f"--stream: {source} cannot be opened: {hints[source.kind]}")
    return cap


def stream_fps(cap, fps=0.0) -> float:
    """--fps when given, else the rate the source declares, else DEFAULT_FPS."""
    if fps:
        return float(fps)
    rate = cap.get(cv2.CAP_PROP_FPS)
    return float(rate) if rate and 0 < rate <= 1000 else DEFAULT_FPS


def is_paced(cap, source: StreamSource) -> bool:
    """Whether a real-time reader waits for each frame's time: for a file, and for a URL of known length (a file
    served over HTTP); a live source (a camera, RTSP, MJPEG: no length) sends in real time by itself, and pacing
    it at a declared rate that is lower than its own would let it fall further and further behind."""
    return source.kind == "file" or (source.kind == "url" and cap.get(cv2.CAP_PROP_FRAME_COUNT) > 0)


def is_realtime(choice, source: StreamSource) -> bool:
    """--stream_realtime: auto = real time for cameras and URLs, as fast as possible (no window dropped) for files."""
    choice = str(choice).strip().lower()
    if choice == "auto":
        return source.kind != "file"
    return choice in ("true", "yes", "1", "on")


class StreamWindows:
    """The windows of presets.eval_windows (test_clips 0) numbered k = 0, 1, ... as frames arrive: window k is
    sample_duration frames, every sample_t_stride-th, from frame 1 + k * inference_stride * sample_t_stride."""

    def __init__(self, spec: ClipSpec):
        self.spec = replace(spec, test_clips=0)
        self.size, self.step, self.stride = spec.sample_duration, max(1, spec.sample_t_stride), spec.inference_stride
        # one window plus one stride: the newest complete window is always whole in the ring
        self.ring_size = self.step * (self.size + self.stride)

    def numbers(self, k: int) -> list:
        begin = k * self.stride
        return [1 + self.step * (begin + j) for j in range(self.size)]

    def first(self, k: int) -> int:
        return 1 + self.step * k * self.stride

    def newest(self, count: int) -> int:
        """The last window complete after ``count`` frames; -1 when none is."""
        return max(-1, ((count - 1) // self.step - (self.size - 1)) // self.stride)

    def tail(self, count: int):
        """(k, numbers) of the loop-padded last window of a stream that ended after ``count`` frames (as
        eval_windows pads a file's), or None when its last window is complete."""
        windows = eval_windows(count, self.spec)
        k = len(windows) - 1
        return (k, windows[k]) if k > self.newest(count) else None


class RingFrames:
    """One window's frames, taken from the ring, with VideoFile's interface (frame_size, read(numbers, reduce)):
    presets.eval_clip makes the clip from them exactly as from the file."""

    def __init__(self, frames: dict):
        self._frames = frames

    def frame_size(self, first_number: int = 1) -> tuple[int, int]:
        return self._frames[first_number].shape[:2]

    def read(self, numbers, reduce: int = 1):
        """BGR frames of ``numbers``, area-averaged to 1/``reduce`` size as VideoFile.read does."""
        frames = shrink_frames({n: self._frames[n] for n in set(numbers)}, reduce)
        return [frames[n] for n in numbers], reduce


@dataclass
class Taken:
    """A window the loop took: its index, frame numbers, frames, when its last frame arrived, and how many
    windows before it were skipped."""
    k: int
    numbers: list
    frames: RingFrames
    ready: float
    dropped: int = 0


class FrameRing:
    """The newest ``capacity`` frames of a stream, numbered from 1, shared by the reader thread and the loop.

    ``hold``: the reader waits rather than drop a frame the loop still needs (keep_from on), so no window is
    skipped. ``keep_all``: every frame also waits in ``pending`` until taken (for the annotated video)."""

    def __init__(self, capacity: int, hold: bool, keep_all: bool = False):
        self._cond = threading.Condition()
        self._frames = deque()  # (number, frame, arrival time)
        self.capacity, self.hold = capacity, hold
        self.count = 0
        self.ended = None  # why the stream ended; None while it runs
        self.stopped = False  # the run is over: the reader stops at its next frame
        self.keep_from = 1  # with hold: the first frame the loop still needs
        self.pending = deque() if keep_all else None

    def push(self, frame) -> bool:
        """Add the next frame; False once the run is over."""
        with self._cond:
            while (self.hold and not self.stopped and len(self._frames) >= self.capacity
                   and self._frames[0][0] >= self.keep_from):
                self._cond.wait(POLL_S)
            if self.stopped:
                return False
            self.count += 1
            self._frames.append((self.count, frame, time.monotonic()))
            if len(self._frames) > self.capacity:
                self._frames.popleft()
            if self.pending is not None:
                self.pending.append((self.count, frame))
            self._cond.notify_all()
        return True

    def finish(self, why: str):
        with self._cond:
            if self.ended is None:
                self.ended = why
            self._cond.notify_all()

    def stop(self):
        with self._cond:
            self.stopped = True
            self._cond.notify_all()

    def take(self, windows: StreamWindows, next_k: int, newest: bool, interrupted) -> Taken | None:
        """Wait for window ``next_k`` (or, ``newest``, the newest complete one, the skipped ones dropped); None
        when interrupted, or when the stream ended before it was complete."""
        with self._cond:
            while not interrupted():
                k = windows.newest(self.count)
                if k >= next_k:
                    k = k if newest else next_k
                    self.keep_from = windows.first(k + 1)
                    return self._taken(k, windows.numbers(k), k - next_k)
                if self.ended is not None:
                    return None
                self._cond.wait(POLL_S)
            return None

    def take_tail(self, windows: StreamWindows, next_k: int) -> Taken | None:
        """The loop-padded last window of a stream that ended (see StreamWindows.tail), or None."""
        with self._cond:
            tail = windows.tail(self.count)
            return self._taken(tail[0], tail[1], tail[0] - next_k) if tail and tail[0] >= next_k else None

    def _taken(self, k, numbers, dropped) -> Taken:
        held = {number: (frame, arrival) for number, frame, arrival in self._frames}
        frames = RingFrames({n: held[n][0] for n in set(numbers)})
        self._cond.notify_all()  # keep_from moved: a waiting reader may go on
        return Taken(k, list(numbers), frames, held[max(numbers)][1], dropped)

    def take_pending(self, upto: int | None = None) -> list:
        """The frames waiting for the annotated video, up to frame ``upto`` (all when None)."""
        with self._cond:
            taken = []
            while self.pending and (upto is None or self.pending[0][0] <= upto):
                taken.append(self.pending.popleft())
            return taken


def read_frames(cap, ring: FrameRing, pace_fps: float = 0.0):
    """The reader thread: every frame of ``cap`` into ``ring`` until the stream ends or the run is over; with
    ``pace_fps`` no faster than that rate (a file or URL read as a live source)."""
    start, n = time.monotonic(), 0
    try:
        while True:
            if pace_fps:
                delay = start + n / pace_fps - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            ok, frame = cap.read()
            if not ok or frame is None:
                ring.finish("ended")
                return
            if not ring.push(frame):
                return
            n += 1
    except cv2.error as err:
        ring.finish(f"broke ({str(err).strip().splitlines()[-1]})")
    finally:
        ring.finish("the reader stopped")  # whatever stopped it, the loop must not wait forever
