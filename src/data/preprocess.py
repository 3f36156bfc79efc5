"""The ONE evaluation preprocessing, shared by eval, ONNX eval, Ascend-310 pre-processing and
single-video prediction:

    source = read_video_frames(path)               # frame folder or video file
    for indices in eval_windows(len(source), cfg):  # sliding windows, 1-based frame numbers
        clip = eval_clip(source, indices, cfg)      # float32 [3, T, H, W], normalised

Training uses the same low-level functions (``spatial``, ``temporal``) with random parameters.
"""
from functools import partial

from src.data import spatial, temporal
from src.data.loader import open_video


def read_video_frames(path):
    """A frame folder (``image_00001.jpg`` ...) or a video file (.avi/.mp4/..., decoded in memory).

    Returns a source with ``len(source)`` frames, ``frame_size()`` and ``read(numbers)``; raises
    UserError for a missing, empty or undecodable input.
    """
    return open_video(path)


def eval_windows(n_frames, cfg):
    """List of windows (lists of 1-based frame numbers, each cfg.sample_duration long)."""
    return temporal.eval_indices(n_frames, cfg)


def eval_clip(source, indices, cfg):
    """Resize shorter side to cfg.sample_size, center crop, normalise: float32 [3, T, H, W]."""
    size = cfg.sample_size
    clip = spatial.load_clip(source, indices, partial(spatial.center_box, size=size), size)
    return spatial.normalize_clip(clip)
