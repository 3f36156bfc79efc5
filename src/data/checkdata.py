"""Verify a dataset before a long run.

Frame folders: every annotated video has its folder, the number of frames on disk equals its
segment, no frame of the segment is missing (a gap), no frame file is empty, and its first and last
frames decode; ``--full`` decodes every frame (a damaged or cut JPEG does not decode).
Video files: the file opens, its first and last annotated frames decode (a seek to the end, so a
truncated file is caught); ``--full`` decodes every frame and compares the count with the segment.
Degenerate data (src.data.degenerate: classes without training or validation videos, one class, videos
shorter than ``--sample_duration``) is warned about, one line each; it does not fail the check.
"""
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from src.data.datasets import read_annotation_json
from src.data.degenerate import degenerate_lines, say
from src.data.frames import frame_name
from src.data.layout import SourceLocator
from src.data.video import VideoFile, count_decodable_frames
from src.errors import UserError
from src.cli import ArgumentParser


def _jpeg_problem(path, full):
    """None if the JPEG at ``path`` is fine, else why not."""
    try:
        data = np.fromfile(str(path), np.uint8)
    except OSError:
        return "is missing or unreadable"
    if data.size == 0:
        return "is empty (0 bytes)"
    # OpenCV rejects a JPEG whose data ends early (a cut file), so a full decode catches those too
    if cv2.imdecode(data, cv2.IMREAD_COLOR if full else cv2.IMREAD_REDUCED_COLOR_8) is None:
        return "does not decode"
    return None


def _check_frames(folder, start, end, full):
    expected = end - start
    sizes = {}
    with os.scandir(folder) as it:
        for entry in it:
            if entry.name.startswith("image_") and entry.name.endswith(".jpg"):
                sizes[entry.name] = entry.stat().st_size
    if len(sizes) != expected:
        return "frame-count mismatch", (f"{folder}: {len(sizes)} frames on disk, annotation says {expected}: "
                                        f"regenerate the JSON (or re-extract)")
    empty = sorted(name for name, size in sizes.items() if size == 0)
    if empty:
        return "unreadable frame", (f"{folder / empty[0]} is empty (0 bytes)"
                                    + (f" (and {len(empty) - 1} more)" if len(empty) > 1 else "")
                                    + ": re-extract this video")
    gaps = [number for number in range(start, end) if frame_name(number) not in sizes]
    if gaps:
        more = f" (and {len(gaps) - 1} more)" if len(gaps) > 1 else ""
        return "frame gap", (f"{folder / frame_name(gaps[0])} is missing{more}: the {expected} frames on disk are "
                             f"not numbered {start}..{end - 1} (a gap); re-extract this video")
    numbers = range(start, end) if full else (start, end - 1)
    for number in numbers:
        path = folder / frame_name(number)
        problem = "is missing" if path.name not in sizes else _jpeg_problem(path, full)
        if problem:
            return "unreadable frame", f"{path} {problem}: re-extract this video"
    return None


def _check_video(path, start, end, full):
    expected = end - start
    try:
        if full:
            decodable = count_decodable_frames(path)
            if decodable != expected:
                return "frame-count mismatch", (f"{path}: {decodable} frames decode, annotation says {expected}: "
                                                f"regenerate the JSON (or replace the video)")
        source = VideoFile(path, expected)
        source.read([1])
        source.read([expected])  # a seek to the end: a truncated file fails here
    except UserError as err:
        return "unreadable video", str(err)
    return None


def check_entry(video_id, value, video_path, locate=None, full=False):
    """None if the video is fine, else (kind of problem, one-line description)."""
    annotation = value.get("annotations", {})
    label = annotation.get("label", "test")
    if "video_path" in value:
        source = Path(value["video_path"])
    else:
        locate = locate or SourceLocator(video_path, announce=False)
        source = locate(label, video_id)
    segment = annotation.get("segment")
    if source is None or not source.exists():
        if source is None and locate.format == "video":
            return "missing video", f"{Path(video_path) / label / video_id}.avi (or .mp4, ...) does not exist"
        return "missing folder", f"{source or Path(video_path) / label / video_id} does not exist"
    if not segment or len(segment) != 2:
        return "bad annotation", f"{video_id}: no [start, end] segment in the annotation"
    start, end = int(segment[0]), int(segment[1])
    if source.is_dir():
        return _check_frames(source, start, end, full)
    return _check_video(source, start, end, full)


def check_dataset(annotation_path, video_path, max_listed=20, full=False, input_format="auto", sample_duration=16):
    """Check every entry; print problems (stderr), warnings about degenerate data and a summary; return the
    exit code (warnings do not fail it)."""
    if not Path(video_path).is_dir():
        raise UserError(f"--video_path {video_path} is not a directory of extracted frames or videos")
    labels, database = read_annotation_json(annotation_path)
    locate = SourceLocator(video_path, input_format)
    counts, problems = {}, []
    subsets = {}
    for video_id, value in database.items():
        subsets[value.get("subset")] = subsets.get(value.get("subset"), 0) + 1
        found = check_entry(video_id, value, video_path, locate, full)
        if found:
            counts[found[0]] = counts.get(found[0], 0) + 1
            problems.append(found[1])
    for line in problems[:max_listed]:
        print(f"problem: {line}", file=sys.stderr)
    if len(problems) > max_listed:
        print(f"... and {len(problems) - max_listed} more problems", file=sys.stderr)
    say(degenerate_lines(labels, database, sample_duration, gaps=False))  # a gap is a problem above
    per_subset = ", ".join(f"{n} {s}" for s, n in sorted(subsets.items(), key=lambda x: str(x[0])))
    detail = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "no problems"
    print(f"check_dataset: {len(database)} videos ({per_subset}), {len(labels)} classes, "
          f"{len(database) - len(problems)} ok, {detail}")
    return 1 if problems else 0


def main(argv=None):

    parser = ArgumentParser(description="Check an annotation JSON against the extracted frames or videos.")
    parser.add_argument("--annotation_path", required=True, help="annotation JSON (e.g. ucf101_01.json)")
    parser.add_argument("--video_path", required=True,
                        help="directory of extracted frames <class>/<video>/ or of videos <class>/<video>.avi")
    parser.add_argument("--input_format", default="auto", choices=["auto", "frames", "video"],
                        help="what --video_path holds (auto: detected)")
    parser.add_argument("--full", action="store_true",
                        help="decode every frame (slow; finds damaged frames in the middle of a video)")
    parser.add_argument("--sample_duration", type=int, default=16,
                        help="frames of a training clip: shorter videos are warned about (default 16, the configs')")
    args = parser.parse_args(argv)
    return check_dataset(args.annotation_path, args.video_path, full=args.full, input_format=args.input_format,
                         sample_duration=args.sample_duration)
