"""predict.py --stream: a camera, a network stream (HTTP, RTSP: what OpenCV's FFmpeg backend opens) or a video file
classified window by window as its frames arrive.

A reader thread numbers every frame from 1 (as a file's) into a :class:`FrameRing`; the inference loop takes a
complete window from it, makes the window's clips with presets.eval_clip (the ring hands the frames over with
VideoFile's interface, so the resize, crop and normalisation are a file's) and prints one line per window. The
windows are presets.eval_windows' with test_clips 0: sample_duration frames, every sample_t_stride-th, one window
every inference_stride; when the stream ends its last, short window is loop-padded as a file's. So a file given
as a stream gives the windows and scores of ``predict.py --video=FILE --timeline``.

Real time (cameras and URLs by default): the reader never waits for the loop, a file (or a file served over HTTP)
is read no faster than its frame rate, and the loop takes the newest complete window; the windows it skipped are
counted as dropped and said. Not real time (files by default): the reader waits for the loop, so no window is
dropped. Ctrl-C (SIGINT), or a stream that ends or breaks, ends the run with its summary.
"""
import logging
import signal
import threading
import time
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from src.data.presets import ClipSpec, eval_clip, eval_windows
from src.data.video import shrink_frames
from src.deploy.annotate import annotated_video, class_name
from src.deploy.timeline import write_timeline
from src.errors import UserError
from src.logs import out
from src.metrics import topk_indices

log = logging.getLogger("resnet3d")

DEFAULT_FPS = 25.0  # when the source does not say (many cameras and MJPEG streams)
NETWORK_TIMEOUT_MS = 10_000  # a URL that does not open, or sends nothing, for this long has broken
REALTIME_VALUES = ("auto", "true", "false", "yes", "no", "1", "0", "on", "off")
LINE_TOP = 3  # classes on each window's line (the timeline CSV keeps 5)
_POLL_S = 0.1  # how often a waiting thread looks at Ctrl-C and the end of the stream
_JOIN_S = 2.0  # how long the end of the run waits for a reader stuck in a network read


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
                self._cond.wait(_POLL_S)
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
                self._cond.wait(_POLL_S)
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


class Interrupt:
    """Ctrl-C (SIGINT) while the stream runs: the first asks the loop to stop (the run ends with its summary);
    a second interrupts as Python does. Only in the main thread, and never where SIGINT is ignored."""

    def __init__(self):
        self.asked = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if previous is not signal.SIG_IGN:
                self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True  # a plain flag: the handler takes no lock the interrupted code may hold

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def __call__(self) -> bool:
        return self.asked


@dataclass
class StreamRun:
    """What a stream run did: its windows [(frame numbers, scores)] as for a file's timeline, their latencies
    (seconds from a window's last frame read to its scores), dropped windows, frames read, seconds, why it ended."""
    windows: list = field(default_factory=list)
    latencies: list = field(default_factory=list)
    dropped: int = 0
    frames: int = 0
    seconds: float = 0.0
    ended: str = ""


def window_line(k, numbers, fps, scores, names, latency, dropped=0) -> str:
    """One window's line: its index, frames, time in the stream, top classes, latency (and what was dropped)."""
    classes = topk_indices(scores, min(LINE_TOP, len(scores)))
    top = "  ".join(f"{class_name(names, c)} {scores[c]:.4f}" for c in classes)
    first, last = min(numbers), max(numbers)
    line = (f"window {k}  frames {first}-{last}  {(first - 1) / fps:.3f}-{last / fps:.3f} s  {top}"
            f"  latency {latency * 1000:.1f} ms")
    return line + (f"  ({dropped} window{'s' if dropped > 1 else ''} dropped before it)" if dropped else "")


def _classify(predict, taken: Taken, spec: ClipSpec, fps, names, run: StreamRun, ring: FrameRing, video):
    """Score one window as window_scores scores a file's (mean softmax over its crops); say it; annotate."""
    clips = np.stack([eval_clip(taken.frames, taken.numbers, spec, crop) for crop in range(spec.test_crops)])
    scores = np.asarray(predict(clips), np.float64).mean(axis=0)
    latency = time.monotonic() - taken.ready
    run.windows.append((taken.numbers, scores))
    run.latencies.append(latency)
    run.dropped += taken.dropped
    out.info(window_line(taken.k, taken.numbers, fps, scores, names, latency, taken.dropped))
    if video is not None:
        for _, frame in ring.take_pending(max(taken.numbers)):
            video.write(frame, scores)


def classify_stream(predict, cap, spec: ClipSpec, fps, names=None, realtime=False, pace=True, video=None):
    """Classify the frames ``cap`` gives, window by window (see the module doc); ``video`` (an AnnotatedVideo)
    gets every frame read, labelled. Releases ``cap`` once its reader has finished (one stuck in a network read
    keeps it: the process exit frees it). Returns the StreamRun."""
    windows = StreamWindows(spec)
    ring = FrameRing(windows.ring_size, hold=not realtime, keep_all=video is not None)
    reader = threading.Thread(target=read_frames, args=(cap, ring, fps if realtime and pace else 0.0),
                              name="stream-reader", daemon=True)
    run, next_k = StreamRun(), 0
    try:
        with Interrupt() as interrupted:
            # warmed up on a blank clip first: the first window pays no graph building
            predict(np.zeros((spec.test_crops, 3, spec.sample_duration, spec.sample_size, spec.sample_size),
                             np.float32))
            start = time.monotonic()
            reader.start()
            while (taken := ring.take(windows, next_k, realtime, interrupted)) is not None:
                _classify(predict, taken, windows.spec, fps, names, run, ring, video)
                next_k = taken.k + 1
            if not interrupted() and ring.ended == "ended" and (tail := ring.take_tail(windows, next_k)):
                _classify(predict, tail, windows.spec, fps, names, run, ring, video)
            run.ended = "interrupted (Ctrl-C)" if interrupted() else ring.ended
    finally:
        ring.stop()
        if reader.is_alive():
            reader.join(_JOIN_S)
        if not reader.is_alive():
            cap.release()
    if video is not None:
        for _, frame in ring.take_pending():  # frames after the last window: its scores
            video.write(frame, run.windows[-1][1] if run.windows else None)
    run.frames, run.seconds = ring.count, time.monotonic() - start
    return run


def summary_lines(source, run: StreamRun) -> list:
    """The end of a stream run: frames and frames/s, windows, latency mean / p95, dropped windows."""
    rate = run.frames / run.seconds if run.seconds > 0 else 0.0
    lines = [f"stream {source} {run.ended}: {run.frames} frames in {run.seconds:.2f} s ({rate:.1f} frames/s)"]
    if run.latencies:
        ms = np.asarray(run.latencies) * 1000
        latency = f"latency mean {ms.mean():.1f} ms, p95 {np.percentile(ms, 95):.1f} ms"
    else:
        latency = "no window completed"
    total = len(run.windows) + run.dropped
    line = f"windows: {len(run.windows)} of {total} classified, {run.dropped} dropped; {latency}"
    if run.dropped:
        line += " (inference slower than the stream: a larger --inference_stride or a faster model keeps up)"
    return lines + [line]


def stream_spec(cfg) -> ClipSpec:
    """The clip recipe of a stream: the config's, with sliding windows (test_clips needs the whole video)."""
    spec = ClipSpec.from_config(cfg)
    if spec.test_clips:
        log.warning("warning: a stream is classified by sliding windows every %d frames: test_clips %d is not used",
                    spec.inference_stride, spec.test_clips)
    return replace(spec, test_clips=0)


def predict_stream(cfg, predict, names):
    """predict.py --stream: open the source, classify it until it ends (or Ctrl-C), print the summary, write the
    timeline and the annotated video when asked. Returns the StreamRun."""
    source = parse_source(cfg.stream)
    cap = open_capture(source)
    fps, realtime, spec = stream_fps(cap, cfg.fps), is_realtime(cfg.stream_realtime, source), stream_spec(cfg)
    paced = is_paced(cap, source)
    if realtime:
        mode = f"real time{', read at its frame rate' if paced else ''}: windows dropped when inference is slower"
    else:
        mode = "every window, as fast as inference goes"
    step = spec.sample_t_stride
    out.info(f"stream {source}: {fps:g} frames/s, windows of {spec.sample_duration} frames"
             f"{f' (1 in {step})' if step > 1 else ''}, one every {spec.inference_stride * step} frames ({mode})")
    annotating = annotated_video(cfg.annotate, fps, names) if cfg.annotate else nullcontext()
    with annotating as video:
        run = classify_stream(predict, cap, spec, fps, names, realtime, paced, video)
        if not run.frames and not run.ended.startswith("interrupted"):
            raise UserError(f"--stream: {source} gave no frames ({run.ended})")
    for line in summary_lines(source, run):
        out.info(line)
    if cfg.annotate:
        out.info(f"annotated video: {video.frames} frames -> {cfg.annotate}")
    if cfg.timeline and run.windows:
        csv_path, png = write_timeline(run.windows, names, fps, cfg.timeline)
        out.info(f"timeline: {len(run.windows)} windows -> {csv_path}, {png}")
    return run
