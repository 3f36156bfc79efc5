"""A plain folder of ``<class>/<video file or frame folder>`` as a dataset: no split files, no list.

The split is stratified (each class keeps ``val_fraction`` of its videos for validation, at least one where it
has two or more), drawn with a fixed seed from the sorted listing, so the same folder and fraction always give
the same split. It is written once as an upstream-format annotation JSON (plus a ``split`` entry: fraction, seed
and a digest of the listing) into the run folder, and a model trained on it records the same entry: eval.py,
eval_onnx.py and extract_features.py given the folder and the model make the split again and check the digest
(a folder that changed since training is an error, not a silently different validation set).
"""
import hashlib
import json
import logging
import time
import zlib
from pathlib import Path

import numpy as np

from src.atomic import write_json
from src.data.annotations import build_database, count_sources
from src.data.layout import is_video_file
from src.data.list_annotations import ListLocator
from src.errors import UserError
from src.record import printable

log = logging.getLogger("resnet3d")
SPLIT_SEED = 0  # fixed: the split does not move with the training seed
_SHOWN = 5  # skipped files named before "... and N more"


def _is_frame_folder(path):
    return path.is_dir() and any(p.name.startswith("image_") and p.suffix == ".jpg" for p in path.iterdir())


def list_folder(video_path):
    """(class names, [(video_id, class, path)], skipped paths) of ``<class>/<video>`` under ``video_path``."""
    root = Path(video_path)
    if not root.is_dir():
        raise UserError(f"--video_path {root} is not a folder: pass a folder of <class>/<video> files or frame "
                        f"folders (or an --annotation_path)")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    items, skipped = [], []
    for name in classes:
        for path in sorted((root / name).iterdir()):
            if path.name.startswith("."):
                continue
            if is_video_file(path) or _is_frame_folder(path):
                items.append((path.stem if path.is_file() else path.name, name, path))
            else:
                skipped.append(path)
    classes = sorted({label for _, label, _ in items})
    if len(classes) < 2:
        raise UserError(f"--video_path {root} holds {len(classes)} class folder(s) with videos: a plain-folder "
                        f"dataset needs <class>/<video> for at least two classes")
    return classes, items, skipped


def stratified_split(items, val_fraction, seed=SPLIT_SEED):
    """{video_id: 'training' | 'validation'}: per class, a seeded permutation of its sorted videos; the first
    round(n * val_fraction) (at least 1 of 2+, at most n - 1) go to validation."""
    by_class = {}
    for video_id, label, _ in items:
        by_class.setdefault(label, []).append(video_id)
    subsets = {}
    for label, ids in sorted(by_class.items()):
        ids = sorted(ids)
        rng = np.random.default_rng([seed, zlib.crc32(label.encode("utf-8"))])
        order = rng.permutation(len(ids))
        n_val = min(len(ids) - 1, max(1 if len(ids) > 1 else 0, round(len(ids) * val_fraction)))
        for rank, i in enumerate(order):
            subsets[ids[i]] = "validation" if rank < n_val else "training"
    return subsets


def split_entry(items, subsets, val_fraction, seed=SPLIT_SEED):
    """What identifies a split: fraction, seed, and the digest of (class, video, subset) over the listing."""
    listing = "\n".join(f"{label}/{video_id}\t{subsets[video_id]}" for video_id, label, _ in sorted(items))
    return {"val_fraction": val_fraction, "seed": seed,
            "digest": hashlib.sha256(listing.encode("utf-8")).hexdigest()[:16]}


def _duplicates(items):
    seen = {}
    for video_id, _, path in items:
        if video_id in seen:
            raise UserError(f"{path} and {seen[video_id]} have the same video name '{printable(video_id)}': rename "
                            f"one (a video is named by its file name, without the extension)")
        seen[video_id] = path


def write_folder_split(video_path, dst_json, val_fraction, n_jobs=None):
    """Make the split of ``video_path`` and write it to ``dst_json``; return its ``split`` entry."""
    classes, items, skipped = list_folder(video_path)
    for path in skipped[:_SHOWN]:
        log.warning("not a video or a frame folder, skipped: %s", printable(path, 200))
    if len(skipped) > _SHOWN:
        log.warning("... and %d more files that are not videos, skipped", len(skipped) - _SHOWN)
    _duplicates(items)
    subsets = stratified_split(items, val_fraction)
    fmt = "frames" if any(p.is_dir() for _, _, p in items) else "video"
    locator = ListLocator({(label, video_id): path for video_id, label, path in items}, fmt)
    listed = [(video_id, label, subsets[video_id], str(path)) for video_id, label, path in items]
    database, missing, _ = build_database(listed, count_sources(listed, locator, n_jobs))
    if missing:
        raise UserError(f"{len(missing)} videos under {video_path} cannot be decoded (e.g. {missing[0][1]}): "
                        f"remove or re-encode them")
    for video_id, value in database.items():
        value["video_path"] = str(locator.paths[(value["annotations"]["label"], video_id)].resolve())
    entry = split_entry(items, subsets, val_fraction)
    write_json(dst_json, {"labels": classes, "database": database, "split": entry}, ensure_ascii=False)
    n_val = sum(1 for s in subsets.values() if s == "validation")
    log.info("split %s: %d classes, %d training / %d validation videos (val_fraction %g, seed %d) -> %s",
             video_path, len(classes), len(items) - n_val, n_val, val_fraction, SPLIT_SEED, dst_json)
    return entry


def read_split(annotation_path):
    """The ``split`` entry of an annotation JSON made from a plain folder, or None."""
    try:
        with open(annotation_path, encoding="utf-8") as f:
            entry = json.load(f).get("split")
    except (OSError, ValueError, AttributeError):
        return None
    return entry if isinstance(entry, dict) else None


def folder_annotation(video_path, dst_json, val_fraction, expected=None, write=True, wait_s=3600):
    """The annotation of a plain folder at ``dst_json``: kept when it exists with the same split (a resume),
    else made. ``expected``: the split a model records; a folder whose split differs is an error. ``write``
    False (a training rank other than 0): wait up to ``wait_s`` for rank 0 to write it."""
    current = read_split(dst_json) if Path(dst_json).is_file() else None
    stale = current is None or current.get("val_fraction") != val_fraction or (expected and current != expected)
    if stale and not write:
        deadline = time.monotonic() + wait_s
        while stale and time.monotonic() < deadline:
            time.sleep(1)
            current = read_split(dst_json) if Path(dst_json).is_file() else None
            stale = current is None or current.get("val_fraction") != val_fraction
        if stale:
            raise UserError(f"rank 0 wrote no split of {video_path} to {dst_json} in {wait_s} s: see its log")
    elif stale:
        current = write_folder_split(video_path, dst_json, val_fraction)
    if expected and current != expected:
        raise UserError(f"{video_path} no longer gives the split the model was trained on (digest "
                        f"{current.get('digest')} vs the model's {expected.get('digest')}): videos were added, "
                        f"removed or renamed; pass the annotation file written when it was trained "
                        f"(<result_path>/*_split.json) as --annotation_path")
    return Path(dst_json)


def split_file(result_path, dataset):
    """Where a run keeps the split of its plain folder."""
    return Path(result_path) / f"{dataset}_split.json"


def annotation_of_folder(video_path, annotation_path, result_path, dataset, val_fraction, expected=None,
                         write=True):
    """The annotation to use: ``annotation_path`` when given; else, for a plain folder at ``video_path``, its
    split in ``result_path`` (made or reused; ``expected``: the split a model records). '' when neither."""
    if annotation_path or not video_path:
        return annotation_path
    return str(folder_annotation(video_path, split_file(result_path, dataset), val_fraction, expected, write))
