"""Tiny on-disk data for the data tests: frame folders, videos, configs."""
from pathlib import Path

import cv2
import numpy as np

from src.config import load_config


def write_frames(folder, n_frames, height=48, width=64, same=False, seed=0):
    """``image_00001.jpg`` ... with a textured pattern; frame t is brightness-coded unless ``same``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.uniform(0, 255, (6, 8, 3)).astype(np.float32), (width, height))
    for t in range(1, n_frames + 1):
        frame = base if same else base * 0.5 + 8 * t
        cv2.imwrite(str(folder / f"image_{t:05d}.jpg"), np.clip(frame, 0, 255).astype(np.uint8),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
    return folder


def write_video(path, n_frames=8, size=(64, 48), seed=0):
    """A small MJPG .avi; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, size)
    for _ in range(n_frames):
        writer.write(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    writer.release()
    return path


def data_config(annotation_path="", video_path="", **overrides):
    """The UCF101 config with small clips; ``overrides`` become --key=value options."""
    values = {"annotation_path": annotation_path, "video_path": video_path, "sample_size": 32,
              "sample_duration": 4, "inference_stride": 4, "batch_size": 2, "eval_batch_size": 3,
              "num_workers": 1, "seed": 7}
    values.update(overrides)
    return load_config([f"--{k}={v}" for k, v in values.items()])


def train_dataset(cfg, epoch, rank_id=0, rank_size=1, skip_batches=0):
    """create_train_dataset with cfg's values, as the trainer calls it."""
    from src.data.datasets import create_train_dataset, train_entries
    from src.data.presets import ClipSpec

    entries, _ = train_entries(cfg)
    return create_train_dataset(entries, ClipSpec.from_config(cfg), cfg.seed, cfg.batch_size, epoch,
                                cfg.num_workers, rank_id, rank_size, skip_batches)


def tiny_annotated_dataset(root, n_videos=5, n_frames=(6, 10, 3, 12, 8), classes=("A", "B")):
    """Frames for ``n_videos`` videos and a JSON marking the first 3 'training', rest 'validation'."""
    import json

    root = Path(root)
    database = {}
    for i in range(n_videos):
        label = classes[i % len(classes)]
        vid = f"v_{label}_{i}"
        write_frames(root / "jpg" / label / vid, n_frames[i % len(n_frames)], seed=i)
        database[vid] = {"subset": "training" if i < 3 else "validation",
                         "annotations": {"label": label, "segment": [1, n_frames[i % len(n_frames)] + 1]}}
    path = root / "ann.json"
    path.write_text(json.dumps({"labels": list(classes), "database": database}))
    return path, root / "jpg"
