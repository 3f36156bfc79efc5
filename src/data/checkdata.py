"""Verify a dataset before a long run: every annotated video has its frame folder, the number of
frames on disk equals its segment, and its first and last frames decode."""
import sys
from pathlib import Path

import cv2
import numpy as np

from src.data.datasets import read_annotation_json
from src.data.frames import count_frames, frame_name
from src.errors import UserError


def _decodes(path):
    try:
        data = np.fromfile(str(path), np.uint8)
    except OSError:
        return False
    return data.size > 0 and cv2.imdecode(data, cv2.IMREAD_REDUCED_COLOR_8) is not None


def check_entry(video_id, value, video_path):
    """None if the video is fine, else a one-line problem description."""
    annotation = value.get("annotations", {})
    folder = Path(value["video_path"]) if "video_path" in value else \
        Path(video_path) / annotation.get("label", "test") / video_id
    segment = annotation.get("segment")
    if not folder.is_dir():
        return "missing folder", f"{folder} does not exist"
    if not segment or len(segment) != 2:
        return "bad annotation", f"{video_id}: no [start, end] segment in the annotation"
    expected, on_disk = int(segment[1]) - int(segment[0]), count_frames(folder)
    if on_disk != expected:
        return "frame-count mismatch", (f"{folder}: {on_disk} frames on disk, annotation says {expected}: "
                                        f"regenerate the JSON (or re-extract)")
    for number in (int(segment[0]), int(segment[1]) - 1):
        path = folder / frame_name(number)
        if not _decodes(path):
            return "unreadable frame", f"{path} is missing or does not decode: re-extract this video"
    return None


def check_dataset(annotation_path, video_path, max_listed=20):
    """Check every entry; print problems (stderr) and a summary; return the exit code."""
    if not Path(video_path).is_dir():
        raise UserError(f"--video_path {video_path} is not a directory of extracted frames")
    labels, database = read_annotation_json(annotation_path)
    counts, problems = {}, []
    subsets = {}
    for video_id, value in database.items():
        subsets[value.get("subset")] = subsets.get(value.get("subset"), 0) + 1
        found = check_entry(video_id, value, video_path)
        if found:
            counts[found[0]] = counts.get(found[0], 0) + 1
            problems.append(found[1])
    for line in problems[:max_listed]:
        print(f"problem: {line}", file=sys.stderr)
    if len(problems) > max_listed:
        print(f"... and {len(problems) - max_listed} more problems", file=sys.stderr)
    per_subset = ", ".join(f"{n} {s}" for s, n in sorted(subsets.items(), key=lambda x: str(x[0])))
    detail = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "no problems"
    print(f"check_dataset: {len(database)} videos ({per_subset}), {len(labels)} classes, "
          f"{len(database) - len(problems)} ok, {detail}")
    return 1 if problems else 0


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Check an annotation JSON against the extracted frames.")
    parser.add_argument("--annotation_path", required=True, help="annotation JSON (e.g. ucf101_01.json)")
    parser.add_argument("--video_path", required=True, help="directory of extracted frames <class>/<video>/")
    args = parser.parse_args(argv)
    return check_dataset(args.annotation_path, args.video_path)
