"""MindSpore datasets for training and evaluation.

Resumable and rank-safe by construction: the permutation of epoch ``e`` and every random draw of a
sample depend only on (seed, e, position in the epoch's padded order) — never on MindSpore's
global seed or on how many epochs ran before. Sharding is done here: the permutation is padded by
repeating its start so every rank gets the same number of samples (and therefore of batches).
"""
import json
import logging
import math
from collections import namedtuple
from pathlib import Path

import numpy as np

from src.data import presets
from src.data.layout import SourceLocator, open_source
from src.errors import UserError
from src.runtime import resolve_num_workers

log = logging.getLogger("resnet3d")

VideoEntry = namedtuple("VideoEntry", "video_id frame_dir n_frames label_index")
SUBSET_ALIASES = {"training": "training", "train": "training",
                  "validation": "validation", "val": "validation", "test": "validation",
                  "testing": "testing"}


def canonical_subset(subset):
    """'val' / 'test' / 'validation' -> 'validation'; 'train' / 'training' -> 'training'."""
    try:
        return SUBSET_ALIASES[str(subset).lower()]
    except KeyError:
        raise UserError(f"subset '{subset}' is unknown: use training, validation (or val/test)") from None


def read_annotation_json(annotation_path):
    """(class names, database) of an upstream-format annotation JSON; every entry checked for shape."""
    path = Path(annotation_path)
    if not path.is_file():
        raise UserError(f"annotation file {path} not found: set --annotation_path to a JSON written by "
                        f"generate_ucf101_json.py / generate_hmdb51_json.py")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        labels, database = list(data["labels"]), dict(data["database"])
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"annotation file {path} is not an upstream-format JSON ({err}): regenerate it") from None
    for video_id, value in database.items():
        problem = _entry_problem(value)
        if problem:
            raise UserError(f"annotation file {path}: entry '{video_id}' {problem}: regenerate the file with "
                            f"generate_ucf101_json.py / generate_hmdb51_json.py")
    return labels, database


def _entry_problem(value):
    if not isinstance(value, dict):
        return f"is a {type(value).__name__}, not an object"
    annotation = value.get("annotations", {})
    if not isinstance(annotation, dict):
        return "has 'annotations' that is not an object"
    segment = annotation.get("segment", [1, 1])
    if (not isinstance(segment, (list, tuple)) or len(segment) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in segment)):
        return f"has segment {segment!r}, not [first_frame, last_frame + 1] as two integers"
    return None


def check_n_classes(n_classes, class_names, source):
    """The model must have an output for every class the annotation names."""
    if n_classes < len(class_names):
        raise UserError(f"--n_classes={n_classes} is smaller than the {len(class_names)} classes of {source}: "
                        f"pass --n_classes={len(class_names)}")


def classes_to_train(n_classes, given, class_names, source):
    """Training: the head gets one output per class of the annotation. A command-line ``--n_classes``
    (``given``) that disagrees is an error naming both; a config file's value is replaced, said once."""
    n = len(class_names)
    if given and n_classes != n:
        relation = "smaller" if n_classes < n else "larger"
        raise UserError(f"--n_classes={n_classes} is {relation} than the {n} classes of {source}: drop "
                        f"--n_classes (the annotation's count is used) or pass --n_classes={n}")
    if n_classes != n:
        log.info("n_classes=%d: the classes of %s (the config file's %d replaced)", n, source, n_classes)
    return n


FRAME_CHANNELS = 3  # the pipeline makes RGB clips


def check_input_channels(n_input_channels):
    if n_input_channels != FRAME_CHANNELS:
        raise UserError(f"--n_input_channels={n_input_channels} does not match the data: the frames give "
                        f"{FRAME_CHANNELS} (RGB) channels; pass --n_input_channels={FRAME_CHANNELS}")


def load_annotation(annotation_path, video_path, subset, input_format="auto"):
    """Entries of one subset and the class names: ``(list of VideoEntry, class_names)``.

    As upstream: entries are kept in JSON order, unlabelled ones get label_index -1, and entries
    whose frame folder (or video file, see src.data.layout) is missing or empty are skipped — here
    with a warning saying how many.
    """
    subset = canonical_subset(subset)
    class_names, database = read_annotation_json(annotation_path)
    class_index = {name: i for i, name in enumerate(class_names)}
    locate = SourceLocator(video_path, input_format)
    entries, missing = [], []
    for video_id, value in database.items():
        if value.get("subset") != subset:
            continue
        annotation = value.get("annotations", {})
        label = annotation.get("label")
        if label is not None and label not in class_index:
            raise UserError(f"{annotation_path}: video {video_id} has label '{label}' not in 'labels': "
                            f"regenerate the annotation file")
        if "video_path" in value:
            frame_dir = Path(value["video_path"])
        else:
            frame_dir = locate(label if label is not None else "test", video_id)
        segment = annotation.get("segment", [1, 1])
        n_frames = int(segment[1]) - int(segment[0])
        if n_frames <= 0 or frame_dir is None or not frame_dir.exists():
            missing.append(video_id)
            continue
        entries.append(VideoEntry(video_id, str(frame_dir), n_frames, class_index.get(label, -1)))
    if missing:
        log.warning("warning: %d %s videos of %s have no frames under %s and are skipped (e.g. %s); run "
                    "check_dataset.py", len(missing), subset, annotation_path, video_path, missing[0])
    return entries, class_names


def _single_thread_cv2():
    import cv2
    cv2.setNumThreads(1)  # one process per core scales better than OpenCV threads fighting over it


class TrainSource:
    """Random-access source of one epoch's training samples of one rank: (clip, label).

    Every random draw of a sample comes from default_rng([seed, epoch, position]) (src.data.presets
    draws crop, flip and jitter once per clip).
    """

    def __init__(self, entries, spec, seed, epoch, rank_id=0, rank_size=1, skip=0):
        if not entries:
            raise UserError("no training videos found: check --annotation_path and --video_path")
        self.entries, self.spec, self.seed = entries, spec, seed
        self.epoch, self.rank_id, self.rank_size = epoch, rank_id, rank_size
        order = np.random.default_rng([seed, epoch]).permutation(len(entries))
        self.per_rank = math.ceil(len(entries) / rank_size)
        self.order = np.resize(order, self.per_rank * rank_size)  # pad by repeating the start
        self.skip = skip  # samples of this rank already trained on (resume in the middle of an epoch)
        self._ready = False

    def __len__(self):
        return self.per_rank - self.skip

    def __getitem__(self, index):
        if not self._ready:
            _single_thread_cv2()
            self._ready = True
        position = self.rank_id + (int(index) + self.skip) * self.rank_size
        entry = self.entries[self.order[position]]
        rng = np.random.default_rng([self.seed, self.epoch, position])
        clip = presets.train_clip(open_source(entry.frame_dir, entry.n_frames), entry.n_frames, self.spec, rng)
        return clip, np.int32(entry.label_index)


def _generator_dataset(source, columns, num_workers, rank_size=1):
    """``num_workers``: a number, or auto (this host's cores shared by its ranks)."""
    import mindspore.dataset as ds

    num_workers = resolve_num_workers(num_workers, rank_size)
    if num_workers > 1:  # OpenCV's thread pool does not survive a fork: a worker would hang in its first cv2 call
        _single_thread_cv2()
    return ds.GeneratorDataset(source, column_names=columns, shuffle=False,
                               num_parallel_workers=num_workers, python_multiprocessing=num_workers > 1)


def train_entries(paths, data, arch):
    """The training videos of the annotation ``paths`` names (and its class names), checked against the input
    channels of ``arch``. ``paths``, ``data``, ``arch``: the config's sections (src.config_keys)."""
    entries, class_names = load_annotation(paths.annotation_path, paths.video_path, "training", data.input_format)
    check_input_channels(arch.n_input_channels)
    return entries, class_names


def steps_per_epoch(n_videos, batch_size, rank_size=1):
    """Batches per epoch on every rank (the same on all ranks)."""
    return math.ceil(n_videos / rank_size) // batch_size


def create_train_dataset(entries, spec, seed, batch_size, epoch, num_workers=1, rank_id=0, rank_size=1,
                         skip_batches=0):
    """Batched dataset of epoch ``epoch`` for rank ``rank_id``: ("clip" float32 [B,3,T,H,W], "label" int32 [B]).

    One clip per video per epoch; drop_remainder=True; get_dataset_size() = steps_per_epoch - skip_batches
    (the batches after the first ``skip_batches``, bit-identical to those of a whole epoch).
    """
    source = TrainSource(entries, spec, seed, epoch, rank_id, rank_size, skip=skip_batches * batch_size)
    if source.per_rank < batch_size:
        raise UserError(f"--batch_size {batch_size} is larger than the {source.per_rank} training videos "
                        f"per rank: lower --batch_size")
    return _generator_dataset(source, ["clip", "label"], num_workers, rank_size).batch(batch_size,
                                                                                        drop_remainder=True)


class EvalVideos(list):
    """The evaluated videos: a list of (video_id, label_index) in video_index order, plus
    ``.videos`` (this list), ``.class_names`` (index -> name), ``.n_clips`` (views in total) and ``.views``
    (how the accuracy line names the views; empty for the original's protocol)."""

    def __init__(self, videos, class_names, n_clips, views=""):
        super().__init__(videos)
        self.class_names = list(class_names)
        self.n_clips = n_clips
        self.views = views

    @property
    def videos(self):
        return self


class EvalSource:
    """Random-access source of every view (window x crop) of every video:
    (clip, label, video_index, window_index = view index), in video order then view order. With ``rank_size`` > 1
    only every rank_size-th window from ``rank_id`` on (distributed evaluation; ``n_clips`` counts all)."""

    def __init__(self, entries, spec, rank_id=0, rank_size=1):
        self.entries, self.spec = entries, spec
        items = [(v, w, numbers, crop) for v, entry in enumerate(entries)
                 for w, (numbers, crop) in enumerate(presets.eval_views(entry.n_frames, spec))]
        self.n_clips = len(items)
        self.items = items[rank_id::rank_size]
        self._ready = False

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        if not self._ready:
            _single_thread_cv2()
            self._ready = True
        video, window, numbers, crop = self.items[int(index)]
        entry = self.entries[video]
        clip = presets.eval_clip(open_source(entry.frame_dir, entry.n_frames), numbers, self.spec, crop)
        return clip, np.int32(entry.label_index), np.int32(video), np.int32(window)


def eval_entries(paths, data, arch, subset="validation"):
    """The videos of one subset of the annotation ``paths`` names (and its class names), checked against the
    classes and input channels of ``arch``."""
    entries, class_names = load_annotation(paths.annotation_path, paths.video_path, subset, data.input_format)
    check_n_classes(arch.n_classes, class_names, paths.annotation_path)
    check_input_channels(arch.n_input_channels)
    if not entries:
        raise UserError(f"no {canonical_subset(subset)} videos found: check --annotation_path and --video_path")
    return entries, class_names


def create_eval_dataset(entries, class_names, spec, batch_size, num_workers=1, rank_id=0, rank_size=1):
    """(dataset, videos) for evaluation, as create_train_dataset is for training: the dataset yields ("clip"
    float32 [b,3,T,H,W], "label" int32 [b], "video_index" int32 [b], "window_index" int32 [b]) in
    micro-batches of ``batch_size`` (last one smaller); ``videos`` is an :class:`EvalVideos` (list of
    (video_id, label_index), ``.class_names``, ``.n_clips``). ``rank_id`` / ``rank_size``: this rank's share
    of the windows (src.inference.loop gathers the shares)."""
    source = EvalSource(entries, spec, rank_id, rank_size)
    dataset = _generator_dataset(source, ["clip", "label", "video_index", "window_index"], num_workers, rank_size)
    dataset = dataset.batch(batch_size, drop_remainder=False)
    videos = EvalVideos([(e.video_id, e.label_index) for e in entries], class_names, source.n_clips,
                        presets.views_label(spec))
    return dataset, videos


def eval_dataset_of(paths, data, arch, evaluation, batch_size, num_workers, rank_id=0, rank_size=1):
    """create_eval_dataset over the annotation's ``evaluation.eval_subset`` with the clip recipe of ``data`` and
    ``evaluation``; ``batch_size`` / ``num_workers``: the config's eval_batch_size and num_workers."""
    return create_eval_dataset(*eval_entries(paths, data, arch, evaluation.eval_subset),
                               presets.ClipSpec.of(data, evaluation), batch_size, num_workers, rank_id, rank_size)
