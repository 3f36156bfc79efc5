"""Datasets that load but train badly, said before a long run: one ``warning:`` line each, naming the class or
the video (at most MAX_LISTED of a kind, then how many more).

- a class without training videos (the network never learns it) or without validation videos (its accuracy
  is never measured); a dataset of one class (every prediction is right);
- a video shorter than a clip (its frames repeat to fill the clip: upstream's loop padding);
- a frame folder with a gap (image_00001.jpg, image_00003.jpg): the frame count no longer names the last frame,
  and training stops with ``frame ... is missing`` when a clip reaches the gap;
- a config whose dataset contradicts its annotation (UCF101's config on an HMDB51 file names every output
  ucf101): :func:`check_dataset_name`.

check_dataset.py and list_annotations.py print these; training calls :func:`warn_degenerate` and
:func:`check_dataset_name` at its start.
"""
import logging
import os
import re
from pathlib import Path

from src.data.datasets import read_annotation_json
from src.data.layout import SourceLocator

log = logging.getLogger("resnet3d")

KNOWN_CLASS_COUNTS = {"ucf101": 101, "hmdb51": 51}
MAX_LISTED = 10
_FRAME = re.compile(r"image_(\d+)\.jpg")


def frame_gaps(folder, first=1):
    """Frame numbers from ``first`` up to the highest ``image_NNNNN.jpg`` in ``folder`` that are missing
    (empty for a folder without frames, or none missing)."""
    try:
        with os.scandir(folder) as it:
            present = {int(m.group(1)) for m in (_FRAME.fullmatch(e.name) for e in it) if m}
    except OSError:
        return []
    if not present:
        return []
    return sorted(set(range(first, max(present) + 1)) - present)


def gap_line(video_id, folder, gaps):
    more = f" (and {len(gaps) - 1} more)" if len(gaps) > 1 else ""
    return (f"video {video_id}: {Path(folder) / f'image_{gaps[0]:05d}.jpg'} is missing{more} while later frames "
            f"exist: training stops when a clip reaches it; re-extract this video")


def _class_lines(class_names, database):
    count = {name: {"training": 0, "validation": 0} for name in class_names}
    for value in database.values():
        label = value.get("annotations", {}).get("label")
        if label in count and value.get("subset") in ("training", "validation"):
            count[label][value["subset"]] += 1
    kinds = {"one class": [], "no training": [], "no validation": []}
    if len(class_names) == 1:
        kinds["one class"].append(f"the dataset has one class ('{class_names[0]}'): every prediction is right, "
                                  f"so its accuracy means nothing; list at least two classes")
    for name, n in count.items():
        if n["training"] == 0:
            kinds["no training"].append(f"class '{name}' has no training videos: the network never learns it")
        if n["validation"] == 0:
            kinds["no validation"].append(f"class '{name}' has no validation videos: its accuracy is never "
                                          f"measured")
    return kinds


def _video_lines(database, clip_frames, source_of, gaps):
    kinds = {"short": [], "gap": []}
    for video_id, value in database.items():
        annotation = value.get("annotations", {})
        segment = annotation.get("segment")
        if not segment or len(segment) != 2:
            continue
        n = int(segment[1]) - int(segment[0])
        if clip_frames and 0 < n < clip_frames:
            kinds["short"].append(f"video {video_id} (class '{annotation.get('label')}') has {n} frames, fewer "
                                  f"than a clip of {clip_frames}: its frames repeat to fill the clip")
        source = source_of(video_id, value) if gaps and source_of else None
        if source is not None and source.is_dir():
            missing = frame_gaps(source, int(segment[0]))
            if missing:
                kinds["gap"].append(gap_line(video_id, source, missing))
    return kinds


def degenerate_lines(class_names, database, clip_frames=None, source_of=None, gaps=True):
    """The warnings for an annotation's ``class_names`` and ``database`` (as read_annotation_json returns
    them), without the ``warning:`` prefix. ``clip_frames``: the clip length (None: no short-video check);
    ``source_of(video_id, value)``: the video's frame folder or file, or None (None: no gap check)."""
    kinds = {**_class_lines(class_names, database), **_video_lines(database, clip_frames, source_of, gaps)}
    lines = []
    for kind, found in kinds.items():
        lines += found[:MAX_LISTED]
        if len(found) > MAX_LISTED:
            lines.append(f"... and {len(found) - MAX_LISTED} more of this kind ({kind})")
    return lines


def say(lines):
    """Each line as one ``warning:`` line (stderr, and the run's log)."""
    for line in lines:
        log.warning("warning: %s", line)
    return lines


def source_finder(video_path, input_format="auto"):
    """``source_of`` for degenerate_lines: the entry's own ``video_path``, else its place under ``video_path``."""
    locate = SourceLocator(video_path, input_format, announce=False)

    def source_of(video_id, value):
        if "video_path" in value:
            return Path(value["video_path"])
        return locate(value.get("annotations", {}).get("label", "test"), video_id)

    return source_of


def warn_degenerate(annotation_path, video_path, clip_frames=None, input_format="auto"):
    """For training's start: warn about the annotation's degenerate classes and videos (see the module's doc);
    returns the lines. Reads every frame folder's listing once (the gap check)."""
    class_names, database = read_annotation_json(annotation_path)
    return say(degenerate_lines(class_names, database, clip_frames, source_finder(video_path, input_format)))


def _named_dataset(annotation_path):
    """The one known dataset the annotation's file name (else its nearest folder) names, or None."""
    path = Path(annotation_path)
    for part in (path.name, *(p.name for p in path.parents)):
        named = [d for d in KNOWN_CLASS_COUNTS if d in part.lower()]
        if len(named) == 1:
            return named[0]
        if named:
            return None
    return None


def check_dataset_name(dataset, annotation_path, n_classes):
    """Warn (and return the line) when the config's ``dataset`` is a known one (ucf101 / hmdb51) but the
    annotation looks like the other: its file name says so, or it has the other's class count. None if not."""
    dataset = str(dataset).lower()
    if dataset not in KNOWN_CLASS_COUNTS:
        return None
    named = _named_dataset(annotation_path)
    if named == dataset:  # e.g. a subset of UCF101 that happens to have 51 classes
        return None
    by_count = [d for d, n in KNOWN_CLASS_COUNTS.items() if d != dataset and n == n_classes]
    other = named if named not in (None, dataset) else (by_count[0] if by_count else None)
    if other is None:
        return None
    why = [f"its file name says {other}"] if named == other else []
    why += [f"it has {n_classes} classes, as {other} has"] if other in by_count else []
    line = (f"dataset={dataset}, but the annotation {annotation_path} looks like {other} ({' and '.join(why)}; "
            f"{dataset} has {KNOWN_CLASS_COUNTS[dataset]}): every output is named {dataset} "
            f"(resnet3d-{dataset}-*.ckpt, {dataset}_eval.log); pass --dataset={other} (or {other}_config.yaml)")
    say([line])
    return line
