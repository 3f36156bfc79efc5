"""predict.py --stream: a camera, a network stream (HTTP, RTSP: what OpenCV's FFmpeg backend opens) or a video file
classified window by window as its frames arrive.

The input side (the source, the reader thread, the frame ring and the windows) is src.deploy.stream_input: a
reader thread numbers every frame from 1 (as a file's) into a FrameRing; the inference loop here takes a
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
from contextlib import nullcontext
from dataclasses import dataclass, field, replace

import numpy as np

from src.data.presets import ClipSpec, eval_clip
from src.deploy.annotate import annotated_video, class_name
from src.deploy.stream_input import (FrameRing, StreamWindows, Taken, is_paced, is_realtime, open_capture,
                                     parse_source, read_frames, stream_fps)
from src.deploy.timeline import write_timeline
from src.errors import UserError
from src.logs import out
from src.metrics import topk_indices

__all__ = ["classify_stream", "parse_source", "predict_stream", "stream_spec", "summary_lines", "window_line"]

log = logging.getLogger("resnet3d")

LINE_TOP = 3  # classes on each window's line (the timeline CSV keeps 5)
_JOIN_S = 2.0  # how long the end of the run waits for a reader stuck in a network read


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


def stream_spec(spec: ClipSpec) -> ClipSpec:
    """The clip recipe of a stream: ``spec`` (the config's data and evaluation keys, ClipSpec.of) with
    sliding windows (test_clips needs the whole video)."""
    if spec.test_clips:
        log.warning("warning: a stream is classified by sliding windows every %d frames: test_clips %d is not used",
                    spec.inference_stride, spec.test_clips)
    return replace(spec, test_clips=0)


def predict_stream(stream, spec: ClipSpec, predict, names, *, fps=0.0, realtime="auto", annotate="", timeline=""):
    """predict.py --stream: open ``stream`` (--stream's value), classify it with clips of ``spec`` until it ends
    (or Ctrl-C), print the summary, write the timeline and the annotated video when asked (the paths
    ``timeline``, ``annotate``). ``fps`` and ``realtime``: --fps and --stream_realtime. Returns the StreamRun."""
    source = parse_source(stream)
    cap = open_capture(source)
    fps, realtime, spec = stream_fps(cap, fps), is_realtime(realtime, source), stream_spec(spec)
    paced = is_paced(cap, source)
    if realtime:
        mode = f"real time{', read at its frame rate' if paced else ''}: windows dropped when inference is slower"
    else:
        mode = "every window, as fast as inference goes"
    step = spec.sample_t_stride
    out.info(f"stream {source}: {fps:g} frames/s, windows of {spec.sample_duration} frames"
             f"{f' (1 in {step})' if step > 1 else ''}, one every {spec.inference_stride * step} frames ({mode})")
    with annotated_video(annotate, fps, names) if annotate else nullcontext() as video:
        run = classify_stream(predict, cap, spec, fps, names, realtime, paced, video)
        if not run.frames and not run.ended.startswith("interrupted"):
            raise UserError(f"--stream: {source} gave no frames ({run.ended})")
    for line in summary_lines(source, run):
        out.info(line)
    if annotate:
        out.info(f"annotated video: {video.frames} frames -> {annotate}")
    if timeline and run.windows:
        csv_path, png = write_timeline(run.windows, names, fps, timeline)
        out.info(f"timeline: {len(run.windows)} windows -> {csv_path}, {png}")
    return run
