"""Video files -> folders of JPEG frames (``<target>/<class>/<video stem>/image_00001.jpg`` ...).

Decoding is in-process with OpenCV, parallel over videos. Crash-safe: each video is written into a
hidden temporary folder (src.atomic.atomic_dir) that is renamed only when complete. A finished folder holds a
stamp (``.source.json``: the video's size and mtime, frames written) written before the rename;
re-runs skip a folder whose stamp matches its video and redo any other (partial, replaced video,
folder from another tool). Failed videos never leave a folder behind; they and the videos that
decode short (fewer frames than the container declares: a truncated file) are listed in
``<target>/extraction_failures.txt``.
"""
import json
import multiprocessing
import os
import sys
from collections import namedtuple
from pathlib import Path

import cv2

from src.atomic import atomic_dir, remove_stale_temps, writable_dir, write_text
from src.data.frames import VIDEO_SUFFIXES, count_frames, frame_name
from src.errors import UserError
from src.cli import ArgumentParser

FAILURES_NAME = "extraction_failures.txt"
STAMP_NAME = ".source.json"
# Measured (bench/extraction.py, XVID and H.264 320x240): quality 75 writes 0.58x the bytes of 90 at
# 40.4 dB PSNR to the decoded source (90: 42.9 dB; ffmpeg's default JPEGs: 34.8 dB at 0.27x the bytes
# of 90) and a mean error of 1.5/255 in the 112x112 training crops (90: 1.0, ffmpeg's: 3.4).
DEFAULT_QUALITY = 75
# status: done / skipped / failed; frames written (or found); bytes written; frames the container
# declares; short: fewer frames decode than the container's timeline holds; reason (failed only)
Result = namedtuple("Result", "status frames bytes declared short reason", defaults=(0, 0, 0, False, ""))


def find_videos(video_root):
    """(video file, output folder relative to target) for ``root/<class>/<video>`` and ``root/<video>``."""
    video_root = Path(video_root)
    if not video_root.is_dir():
        raise UserError(f"--video_path {video_root} is not a directory of videos")
    found = []
    for entry in sorted(video_root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            for video in sorted(entry.iterdir()):
                if video.is_file() and video.suffix.lower() in VIDEO_SUFFIXES and not video.name.startswith("."):
                    found.append((video, Path(entry.name) / video.stem))
        elif entry.suffix.lower() in VIDEO_SUFFIXES:
            found.append((entry, Path(entry.stem)))
    return found


def _resize_shorter(frame, size):
    height, width = frame.shape[:2]
    if not size or min(height, width) == size:
        return frame
    scale = size / min(height, width)
    new_size = (max(1, int(round(width * scale))), max(1, int(round(height * scale))))
    return cv2.resize(frame, new_size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _stamp_of(video):
    stat = Path(video).stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def finished_stamp(out_dir, video):
    """The stamp of ``out_dir`` if it is a complete extraction of this very ``video`` file, else None."""
    try:
        stamp = json.loads((Path(out_dir) / STAMP_NAME).read_text(encoding="utf-8"))
        current = _stamp_of(video)
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or any(stamp.get(k) != v for k, v in current.items()):
        return None
    return stamp if count_frames(out_dir) == stamp.get("frames") else None


def is_short(decoded, declared, last_stamp):
    """A decode that ends before the container's declared length. AVIs with packed B-frames decode
    one or two frames fewer than they declare, but their last frame's timestamp still reaches the
    end, so the timeline (last timestamp + 1, in frames) is compared rather than the count."""
    return declared > 0 and max(decoded, int(last_stamp) + 1) < declared


def extract_video(video, out_dir, size=240, quality=DEFAULT_QUALITY):
    """Extract one video into ``out_dir`` (replacing an outdated folder); returns a Result."""
    out_dir = Path(out_dir)
    if out_dir.is_dir():
        stamp = finished_stamp(out_dir, video)
        if stamp is not None:
            return Result("skipped", stamp["frames"], 0, stamp.get("declared", 0), bool(stamp.get("short")))
    # one decoding thread per worker process (one per core): FFmpeg's own threads measured 2x slower
    cap = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    try:
        if not cap.isOpened():
            raise RuntimeError("cannot be opened (corrupt file, not a video, or missing codec)")
        # replaces an outdated folder (replaced video, or a folder without a stamp) once complete
        with atomic_dir(out_dir) as partial:
            return _write_frames(cap, video, partial, size, quality)
    except Exception as err:  # noqa: BLE001 - any failure is reported per video, others go on
        reason = str(err) if isinstance(err, (RuntimeError, UserError)) else f"{type(err).__name__}: {err}"
        return Result("failed", reason=reason)
    finally:
        cap.release()


def _write_frames(cap, video, folder, size, quality):
    """Every frame of the open capture as a JPEG in ``folder``, then the stamp; returns a done Result."""
    n, written, last_stamp = 0, 0, -1.0
    stamp = _stamp_of(video)
    declared = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        last_stamp = cap.get(cv2.CAP_PROP_PTS)
        ok, data = cv2.imencode(".jpg", _resize_shorter(frame, size), params)
        if not ok:
            raise RuntimeError(f"JPEG encoding of frame {n + 1} failed")
        n += 1
        with open(folder / frame_name(n), "wb") as f:
            f.write(data)
        written += data.size
    if n == 0:
        raise RuntimeError("no decodable frames (empty or corrupt video)")
    short = is_short(n, declared, last_stamp)
    stamp.update(frames=n, declared=declared, short=short)
    (folder / STAMP_NAME).write_text(json.dumps(stamp), encoding="utf-8")
    return Result("done", n, written, declared, short)


def _job(args):
    cv2.setNumThreads(1)
    video, out_dir, size, quality = args
    return (str(video),) + tuple(extract_video(video, out_dir, size, quality))


def extract_all(video_path, target_path, size=240, quality=DEFAULT_QUALITY, n_jobs=None, progress=True):
    """Extract every video under ``video_path``; returns a summary dict (and writes the failures file)."""
    from tqdm import tqdm

    videos = find_videos(video_path)
    hint = "frames are written there: pass a writable --target_path"
    target = writable_dir(target_path, hint)  # one line for a read-only target, not one failure per video
    remove_stale_temps(target)  # a failures list of a killed earlier run
    jobs = [(video, target / rel, size, quality) for video, rel in videos]
    for folder in sorted({(target / rel).parent for _, rel in videos} - {target}):
        writable_dir(folder, hint)
    summary = {"videos": len(jobs), "done": 0, "skipped": 0, "failed": 0, "frames": 0, "bytes": 0,
               "failures": [], "short": []}
    n_jobs = max(1, min(n_jobs or os.cpu_count() or 1, len(jobs) or 1))
    bar = tqdm(total=len(jobs), desc="extracting frames", unit="video", disable=not progress)
    if n_jobs > 1:
        with multiprocessing.Pool(n_jobs) as pool:
            results = list(_track(pool.imap_unordered(_job, jobs, chunksize=4), bar))
    else:
        results = list(_track(map(_job, jobs), bar))
    bar.close()
    for video, status, frames, written, declared, short, reason in sorted(results):
        summary[status] += 1
        if status == "done":
            summary["frames"] += frames
            summary["bytes"] += written
        if status == "failed":
            summary["failures"].append((video, reason))
        elif short:  # reported again when skipped: the file is still short
            summary["short"].append((video, f"short decode: {frames} of the {declared} frames the container "
                                            f"declares decode (truncated file?); {frames} frames extracted"))
    failures_file = target / FAILURES_NAME
    listed = summary["failures"] + summary["short"]
    if listed:
        write_text(failures_file, "".join(f"{v}\t{r}\n" for v, r in listed))
    elif failures_file.exists():
        failures_file.unlink()  # stale list from an earlier run
    return summary


def _track(results, bar):
    for result in results:
        bar.update(1)
        yield result


def report(summary, target_path):
    """Print failures on stderr and the summary line; return the exit code."""
    for video, reason in summary["failures"]:
        print(f"failed: {video}: {reason}", file=sys.stderr)
    for video, reason in summary["short"]:
        print(f"warning: {video}: {reason}", file=sys.stderr)
    print(f"extraction: {summary['videos']} videos, {summary['done']} extracted, {summary['skipped']} "
          f"skipped (already complete), {summary['failed']} failed, {summary['frames']} frames written "
          f"({summary['bytes'] / 1e6:.1f} MB)")
    if summary["failed"] or summary["short"]:
        print(f"the failed and short videos are listed in {Path(target_path) / FAILURES_NAME}", file=sys.stderr)
    if summary["failed"]:
        return 1
    if summary["videos"] == 0:
        print("error: no video files (.avi/.mp4/...) found", file=sys.stderr)
        return 1
    return 0


def add_arguments(parser):
    parser.add_argument("--video_path", required=True, help="directory of <class>/<video>.avi (or of videos)")
    parser.add_argument("--target_path", required=True, help="output directory of <class>/<video>/image_XXXXX.jpg")
    parser.add_argument("--size", type=int, default=240, help="shorter side of the frames in pixels (0 = keep)")
    parser.add_argument("--quality", type=int, default=DEFAULT_QUALITY, help="JPEG quality 1-100")
    parser.add_argument("--n_jobs", type=int, default=0, help="worker processes (0 = all cores)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")


def main(argv=None):

    parser = ArgumentParser(description="Extract JPEG frames from videos (resumable).")
    add_arguments(parser)
    args = parser.parse_args(argv)
    if not 1 <= args.quality <= 100:
        raise UserError(f"--quality {args.quality} must be between 1 and 100")
    if args.size < 0:
        raise UserError(f"--size {args.size} must be 0 (keep) or a positive number of pixels")
    summary = extract_all(args.video_path, args.target_path, args.size, args.quality,
                          args.n_jobs or None, not args.no_progress)
    return report(summary, args.target_path)
