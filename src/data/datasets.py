"""MindSpore datasets for training and evaluation.

Resumable and rank-safe by construction: the permutation of epoch ``e`` and every random draw of a
sample depend only on (cfg.seed, e, position in the epoch's padded order) — never on MindSpore's
global seed or on how many epochs ran before. Sharding is done here: the permutation is padded by
repeating its start so every rank gets the same number of samples (and therefore of batches).
"""
import json
import math
import sys
from collections import namedtuple
from functools import partial
from pathlib import Path

import numpy as np

from src.data import spatial, temporal
from src.data.video import SourceLocator, open_source
from src.data.preprocess import eval_clip
from src.errors import UserError

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
    return labels, database


def load_annotation(annotation_path, video_path, subset, input_format="auto"):
    """Entries of one subset and the class names: ``(list of VideoEntry, class_names)``.

    As upstream: entries are kept in JSON order, unlabelled ones get label_index -1, and entries
    whose frame folder (or video file, see src.data.video) is missing or empty are skipped — here
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
        print(f"warning: {len(missing)} {subset} videos of {annotation_path} have no frames under "
              f"{video_path} and are skipped (e.g. {missing[0]}); run check_dataset.py", file=sys.stderr)
    return entries, class_names


def _settings(cfg):
    """The plain values the workers need (a picklable dict, not the whole config)."""
    keys = ("seed", "sample_size", "sample_duration", "sample_t_stride", "train_crop", "h_flip",
            "colorjitter", "train_crop_min_scale", "train_crop_min_ratio", "train_t_crop",
            "inference_stride")
    return _Settings({k: cfg[k] for k in keys})


class _Settings(dict):
    """Attribute view of a plain dict (``s.sample_size``), picklable for worker processes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _single_thread_cv2():
    import cv2
    cv2.setNumThreads(1)  # one process per core scales better than OpenCV threads fighting over it


class TrainSource:
    """Random-access source of one epoch's training samples of one rank: (clip, label).

    Crop, flip and jitter are drawn once per clip from default_rng([seed, epoch, position]) and
    applied to all its frames (the original port drew them per frame; fixed here).
    """

    def __init__(self, entries, cfg, epoch, rank_id=0, rank_size=1):
        if not entries:
            raise UserError("no training videos found: check --annotation_path and --video_path")
        self.entries, self.cfg = entries, _settings(cfg)
        self.epoch, self.rank_id, self.rank_size = int(epoch), int(rank_id), int(rank_size)
        order = np.random.default_rng([int(cfg.seed), self.epoch]).permutation(len(entries))
        per_rank = math.ceil(len(entries) / rank_size)
        self.order = np.resize(order, per_rank * rank_size)  # pad by repeating the start
        self.per_rank = per_rank
        self._ready = False

    def __len__(self):
        return self.per_rank

    def __getitem__(self, index):
        if not self._ready:
            _single_thread_cv2()
            self._ready = True
        position = self.rank_id + int(index) * self.rank_size
        entry = self.entries[self.order[position]]
        cfg = self.cfg
        rng = np.random.default_rng([int(cfg.seed), self.epoch, position])
        numbers = temporal.train_indices(entry.n_frames, cfg, rng)
        size = cfg.sample_size
        if cfg.train_crop == "random":
            ratio = (cfg.train_crop_min_ratio, 1.0 / cfg.train_crop_min_ratio)
            box = partial(_random_box, scale=(cfg.train_crop_min_scale, 1.0), ratio=ratio, rng=rng)
        else:
            box = partial(spatial.center_box, size=size)
        clip = spatial.load_clip(open_source(entry.frame_dir, entry.n_frames), numbers, box, size)
        flip = bool(cfg.h_flip) and rng.random() < 0.5
        jitter = spatial.draw_jitter(rng) if cfg.colorjitter else None
        return spatial.normalize_clip(clip, flip=flip, jitter=jitter), np.int32(entry.label_index)


def _random_box(height, width, scale, ratio, rng):
    return spatial.random_resized_box(height, width, scale, ratio, rng)


def _generator_dataset(source, columns, cfg):
    import mindspore.dataset as ds

    workers = max(1, int(cfg.get("num_workers", 1)))
    return ds.GeneratorDataset(source, column_names=columns, shuffle=False,
                               num_parallel_workers=workers, python_multiprocessing=workers > 1)


def train_steps_per_epoch(cfg, rank_size=1):
    """Batches per epoch on every rank (the same on all ranks)."""
    entries, _ = load_annotation(cfg.annotation_path, cfg.video_path, "training",
                                 cfg.get("input_format", "auto"))
    return math.ceil(len(entries) / rank_size) // int(cfg.batch_size)


def create_train_dataset(cfg, epoch, rank_id=0, rank_size=1):
    """Batched dataset of epoch ``epoch`` for rank ``rank_id``: ("clip" float32 [B,3,T,H,W], "label" int32 [B]).

    One clip per video per epoch; drop_remainder=True; get_dataset_size() = train_steps_per_epoch.
    """
    entries, _ = load_annotation(cfg.annotation_path, cfg.video_path, "training",
                                 cfg.get("input_format", "auto"))
    source = TrainSource(entries, cfg, epoch, rank_id, rank_size)
    if len(source) < int(cfg.batch_size):
        raise UserError(f"--batch_size {cfg.batch_size} is larger than the {len(source)} training videos "
                        f"per rank: lower --batch_size")
    return _generator_dataset(source, ["clip", "label"], cfg).batch(int(cfg.batch_size), drop_remainder=True)


class EvalVideos(list):
    """The evaluated videos: a list of (video_id, label_index) in video_index order, plus
    ``.videos`` (this list), ``.class_names`` (index -> name) and ``.n_clips`` (windows in total)."""

    def __init__(self, videos, class_names, n_clips):
        super().__init__(videos)
        self.class_names = list(class_names)
        self.n_clips = n_clips

    @property
    def videos(self):
        return self


class EvalSource:
    """Random-access source of every sliding window of every video:
    (clip, label, video_index, window_index), in video order then window order."""

    def __init__(self, entries, cfg):
        self.entries, self.cfg = entries, _settings(cfg)
        self.items = [(v, w, numbers) for v, entry in enumerate(entries)
                      for w, numbers in enumerate(temporal.eval_indices(entry.n_frames, self.cfg))]
        self._ready = False

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        if not self._ready:
            _single_thread_cv2()
            self._ready = True
        video, window, numbers = self.items[int(index)]
        entry = self.entries[video]
        clip = eval_clip(open_source(entry.frame_dir, entry.n_frames), numbers, self.cfg)
        return clip, np.int32(entry.label_index), np.int32(video), np.int32(window)


def create_eval_dataset(cfg, subset="validation"):
    """(dataset, videos): dataset yields ("clip" float32 [b,3,T,H,W], "label" int32 [b],
    "video_index" int32 [b], "window_index" int32 [b]) in micro-batches of cfg.eval_batch_size
    (last one smaller); ``videos`` is an :class:`EvalVideos` (list of (video_id, label_index),
    ``.class_names``, ``.n_clips``)."""
    entries, class_names = load_annotation(cfg.annotation_path, cfg.video_path, subset,
                                           cfg.get("input_format", "auto"))
    if not entries:
        raise UserError(f"no {canonical_subset(subset)} videos found: check --annotation_path and --video_path")
    source = EvalSource(entries, cfg)
    dataset = _generator_dataset(source, ["clip", "label", "video_index", "window_index"], cfg)
    dataset = dataset.batch(int(cfg.get("eval_batch_size", 16)), drop_remainder=False)
    videos = EvalVideos([(e.video_id, e.label_index) for e in entries], class_names, len(source))
    return dataset, videos
