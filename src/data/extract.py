"""Video files -> folders of JPEG frames (``<target>/<class>/<video stem>/image_00001.jpg`` ...).

Decoding is in-process with OpenCV, parallel over videos. Crash-safe: each video is written into a
hidden ``.<stem>.partial`` folder that is renamed only when complete, so a folder that exists is
complete; re-runs skip those and redo partial ones. Failed videos never leave a folder behind and
are listed in ``<target>/extraction_failures.txt``.
"""
import multiprocessing
import os
import shutil
import sys
from pathlib import Path

import cv2

from src.data.frames import VIDEO_SUFFIXES, count_frames, frame_name
from src.errors import UserError

FAILURES_NAME = "extraction_failures.txt"


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


def extract_video(video, out_dir, size=240, quality=90):
    """Extract one video. Returns ("done", n_frames) / ("skipped", n_frames) / ("failed", reason)."""
    out_dir = Path(out_dir)
    if out_dir.is_dir():
        n = count_frames(out_dir)
        if n > 0:
            return "skipped", n
        shutil.rmtree(out_dir)  # an empty folder left by some other tool: redo it
    partial = out_dir.parent / f".{out_dir.name}.partial"
    if partial.exists():
        shutil.rmtree(partial)  # interrupted earlier run
    partial.mkdir(parents=True)
    cap = cv2.VideoCapture(str(video))
    n = 0
    try:
        if not cap.isOpened():
            raise RuntimeError("cannot be opened (corrupt file, not a video, or missing codec)")
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            ok, data = cv2.imencode(".jpg", _resize_shorter(frame, size), params)
            if not ok:
                raise RuntimeError(f"JPEG encoding of frame {n + 1} failed")
            n += 1
            with open(partial / frame_name(n), "wb") as f:
                f.write(data.tobytes())
        if n == 0:
            raise RuntimeError("no decodable frames (empty or corrupt video)")
        os.rename(partial, out_dir)
        return "done", n
    except Exception as err:  # noqa: BLE001 - any failure is reported per video, others go on
        shutil.rmtree(partial, ignore_errors=True)
        reason = str(err) if isinstance(err, RuntimeError) else f"{type(err).__name__}: {err}"
        return "failed", reason
    finally:
        cap.release()


def _job(args):
    cv2.setNumThreads(1)
    video, out_dir, size, quality = args
    return (str(video),) + extract_video(video, out_dir, size, quality)


def extract_all(video_path, target_path, size=240, quality=90, n_jobs=None, progress=True):
    """Extract every video under ``video_path``; returns a summary dict (and writes the failures file)."""
    from tqdm import tqdm

    videos = find_videos(video_path)
    target = Path(target_path)
    target.mkdir(parents=True, exist_ok=True)
    jobs = [(video, target / rel, size, quality) for video, rel in videos]
    for _, rel in videos:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
    summary = {"videos": len(jobs), "done": 0, "skipped": 0, "failed": 0, "frames": 0, "failures": []}
    n_jobs = max(1, min(n_jobs or os.cpu_count() or 1, len(jobs) or 1))
    bar = tqdm(total=len(jobs), desc="extracting frames", unit="video", disable=not progress)
    if n_jobs > 1:
        with multiprocessing.Pool(n_jobs) as pool:
            results = list(_track(pool.imap_unordered(_job, jobs, chunksize=4), bar))
    else:
        results = list(_track(map(_job, jobs), bar))
    bar.close()
    for video, status, value in sorted(results):
        summary[status] += 1
        if status == "done":
            summary["frames"] += value
        elif status == "failed":
            summary["failures"].append((video, value))
    failures_file = target / FAILURES_NAME
    if summary["failures"]:
        tmp = failures_file.with_name(FAILURES_NAME + ".tmp")
        tmp.write_text("".join(f"{v}\t{r}\n" for v, r in summary["failures"]), encoding="utf-8")
        os.replace(tmp, failures_file)
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
    print(f"extraction: {summary['videos']} videos, {summary['done']} extracted, {summary['skipped']} "
          f"skipped (already complete), {summary['failed']} failed, {summary['frames']} frames written")
    if summary["failed"]:
        print(f"the failed videos are listed in {Path(target_path) / FAILURES_NAME}", file=sys.stderr)
        return 1
    if summary["videos"] == 0:
        print("error: no video files (.avi/.mp4/...) found", file=sys.stderr)
        return 1
    return 0


def add_arguments(parser):
    parser.add_argument("--video_path", required=True, help="directory of <class>/<video>.avi (or of videos)")
    parser.add_argument("--target_path", required=True, help="output directory of <class>/<video>/image_XXXXX.jpg")
    parser.add_argument("--size", type=int, default=240, help="shorter side of the frames in pixels (0 = keep)")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality 1-100")
    parser.add_argument("--n_jobs", type=int, default=0, help="worker processes (0 = all cores)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Extract JPEG frames from videos (resumable).")
    add_arguments(parser)
    args = parser.parse_args(argv)
    if not 1 <= args.quality <= 100:
        raise UserError(f"--quality {args.quality} must be between 1 and 100")
    if args.size < 0:
        raise UserError(f"--size {args.size} must be 0 (keep) or a positive number of pixels")
    summary = extract_all(args.video_path, args.target_path, args.size, args.quality,
                          args.n_jobs or None, not args.no_progress)
    return report(summary, args.target_path)
