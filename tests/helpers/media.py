"""Tiny on-disk media for the data tests: frame folders, a noise video, an annotated frame dataset."""
import json
from pathlib import Path

import cv2
import numpy as np


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


def write_noise_video(path, n_frames=8, size=(64, 48), seed=0):
    """A small MJPG .avi of random frames, written with OpenCV directly (not with src's writer); returns
    its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, size)
    for _ in range(n_frames):
        writer.write(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    writer.release()
    return path


def tiny_annotated_dataset(root, n_videos=5, n_frames=(6, 10, 3, 12, 8), classes=("A", "B")):
    """Frames for ``n_videos`` videos and a JSON marking the first 3 'training', rest 'validation'."""
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
