"""The two clip recipes side by side: what the network sees in training and in evaluation.

Both start from 1-based frame numbers (``temporal``) and one crop box per clip (``spatial``), decode
only the frames they need, and end in the same normalisation (float32 [3, T, H, W]). Training draws its
random parameters from ``rng`` once per clip; evaluation is deterministic. :class:`ClipSpec` is the
frozen, picklable part of the config (its data and evaluation sections) that dataset workers need.
"""
from dataclasses import dataclass
from functools import partial

import numpy as np

from src.data import spatial, temporal


@dataclass(frozen=True)
class ClipSpec:
    sample_size: int = 112
    sample_duration: int = 16
    sample_t_stride: int = 1
    inference_stride: int = 16
    train_crop: str = "center"
    train_t_crop: str = "random"
    train_crop_min_scale: float = 0.25
    train_crop_min_ratio: float = 0.75
    h_flip: bool = False
    colorjitter: bool = False
    test_clips: int = 0
    test_crops: int = 1
    mean: tuple = spatial.MEAN
    std: tuple = spatial.STD
    resize: tuple = ()

    @classmethod
    def of(cls, data, evaluation):
        """The clip recipe of the config's ``data`` and ``evaluation`` sections (src.config_keys): the clip,
        the training augmentation and normalisation are data's; the evaluation views are evaluation's."""
        def value(name):
            found = getattr(data, name) if hasattr(data, name) else getattr(evaluation, name)
            return tuple(found) if isinstance(found, list) else found

        return cls(**{name: value(name) for name in cls.__dataclass_fields__})


def train_clip(source, n_frames: int, spec: ClipSpec, rng: np.random.Generator) -> np.ndarray:
    """Training: subsample, random (or centre) temporal crop; random-resized (or centre) crop, optional
    flip and colour jitter, all drawn once for the whole clip."""
    frames = temporal.subsample(range(1, n_frames + 1), spec.sample_t_stride)
    if spec.train_t_crop == "random":
        numbers = temporal.random_crop(frames, spec.sample_duration, rng)
    else:
        numbers = temporal.center_crop(frames, spec.sample_duration)
    if spec.train_crop == "random":
        ratio = (spec.train_crop_min_ratio, 1.0 / spec.train_crop_min_ratio)
        box = partial(spatial.random_resized_box, scale=(spec.train_crop_min_scale, 1.0), ratio=ratio, rng=rng)
    else:
        box = partial(spatial.center_box, size=spec.sample_size)
    clip = spatial.load_clip(source, numbers, box, spec.sample_size)
    flip = spec.h_flip and rng.random() < 0.5
    jitter = spatial.draw_jitter(rng) if spec.colorjitter else None
    return spatial.normalize_clip(clip, flip=flip, jitter=jitter, mean=spec.mean, std=spec.std)


def eval_windows(n_frames: int, spec: ClipSpec) -> list:
    """Evaluation's temporal views: subsample, then the original's window of sample_duration frames every
    inference_stride frames (test_clips 0), or test_clips clips spread uniformly (MMAction2's test mode)."""
    frames = temporal.subsample(range(1, n_frames + 1), spec.sample_t_stride)
    if spec.test_clips:
        return temporal.uniform_clips(frames, spec.sample_duration, spec.test_clips)
    return temporal.sliding_windows(frames, spec.sample_duration, spec.inference_stride)


def eval_views(n_frames: int, spec: ClipSpec) -> list:
    """Every view of a video: (frame numbers, crop index) for each window and each of test_crops crops."""
    return [(numbers, crop) for numbers in eval_windows(n_frames, spec) for crop in range(spec.test_crops)]


def views_label(spec: ClipSpec) -> str:
    """How the views are named on the accuracy line; empty for the original's protocol."""
    if not spec.test_clips and spec.test_crops == 1:
        return ""
    clips = f"{spec.test_clips} clips" if spec.test_clips else f"sliding windows every {spec.inference_stride}"
    return f"{clips} x {spec.test_crops} crop{'s' if spec.test_crops > 1 else ''}"


def eval_clip(source, numbers, spec: ClipSpec, crop: int = 0) -> np.ndarray:
    """Evaluation: resize the shorter side to sample_size; the centre crop (test_crops 1) or crop ``crop`` of
    the three along the longer side (test_crops 3); normalise."""
    if spec.test_crops == 1 and spec.resize:
        box = partial(spatial.resized_center_box, size=spec.sample_size, resize=tuple(spec.resize))
    elif spec.test_crops == 1:
        box = partial(spatial.center_box, size=spec.sample_size)
    else:
        box = partial(spatial.three_crop_box, size=spec.sample_size, index=crop)
    return spatial.normalize_clip(spatial.load_clip(source, numbers, box, spec.sample_size), mean=spec.mean,
                                  std=spec.std)
