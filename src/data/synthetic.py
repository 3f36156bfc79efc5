"""A small, learnable synthetic action dataset written as real MJPG .avi files in UCF101 layout.

8 classes in 4 time-reversed pairs defined only by MOTION of a textured irregular polygon on a
low-frequency background with per-frame noise. Size, angle and position come from the same
distributions for every class, so a single frame carries no class information (the
"easy" motion parameters, measured learnable by a tiny 3D ResNet).

    python -m src.data.synthetic --out DIR [--videos_per_class 200 --test_videos_per_class 40
                                            --frames 16 --size 64 --seed 0 --hmdb]
writes DIR/videos/<Class>/v_<Class>_gXX_cYY.avi and DIR/labels/{classInd,trainlist01,testlist01}.txt
(and <class>_test_split1.txt with --hmdb).

Also the video writers of the tests and benchmarks: ``write_video`` (any frames -> a video file) and
``moving_frames`` (camera-pan-like content).
"""
import math
import multiprocessing
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from src.atomic import atomic_output, remove_stale_temps, write_text
from src.errors import UserError
from src.cli import ArgumentParser

# (name, motion kind, direction); partners are each other's time reversal
CLASSES = [("MoveLeft", "move_x", -1), ("MoveRight", "move_x", 1), ("MoveUp", "move_y", -1),
           ("MoveDown", "move_y", 1), ("RotateCW", "rotate", 1), ("RotateCCW", "rotate", -1),
           ("Grow", "scale", 1), ("Shrink", "scale", -1)]
LOCAL = 48  # side of the object's local texture canvas, in pixels


def _background(rng, size):
    low = rng.uniform(40, 215, (4, 4, 3)).astype(np.float32)
    return cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)


def _object_canvas(rng):
    """Texture (stripes / checker / blobs) inside an irregular polygon with a dark outline."""
    yy, xx = np.mgrid[0:LOCAL, 0:LOCAL].astype(np.float32)
    c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    kind = rng.integers(3)
    if kind == 0:
        angle, period = rng.uniform(0, math.pi), rng.uniform(6, 12)
        pattern = (np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period) > 0)
    elif kind == 1:
        cell = int(rng.integers(5, 10))
        pattern = ((xx // cell + yy // cell) % 2) == 0
    else:
        pattern = cv2.resize(rng.uniform(0, 1, (5, 5)).astype(np.float32), (LOCAL, LOCAL)) > 0.5
    texture = np.where(pattern[..., None], c1, c2).astype(np.float32)
    n = int(rng.integers(5, 10))
    angles = np.sort(rng.uniform(0, 2 * math.pi, n))
    radii = rng.uniform(0.65, 1.0, n) * (LOCAL / 2 - 2)
    points = np.stack([LOCAL / 2 + radii * np.cos(angles), LOCAL / 2 + radii * np.sin(angles)], 1)
    points = np.round(points).astype(np.int32)
    mask = np.zeros((LOCAL, LOCAL), np.float32)
    cv2.fillPoly(mask, [points], 1.0)
    cv2.polylines(texture, [points], True, (20, 20, 20), 2)
    return texture, mask


def _trajectory(kind, direction, rng, frames, size):
    """Per-frame (cx, cy, angle_deg, radius); every class draws the mid-clip state the same way."""
    s = size / 64.0
    cx, cy = rng.uniform(0.4, 0.6, 2) * size
    angle, radius = rng.uniform(0, 360), rng.uniform(9, 20) * s
    speed, spin, growth = rng.uniform(1.5, 3.0) * s, rng.uniform(8, 18), rng.uniform(1.03, 1.05)
    out = []
    for t in range(frames):
        k = (t - (frames - 1) / 2.0) * direction
        state = [cx, cy, angle, radius]
        if kind == "move_x":
            state[0] = cx + k * speed
        elif kind == "move_y":
            state[1] = cy + k * speed
        elif kind == "rotate":
            state[2] = angle - k * spin  # image y points down: negative angle turns clockwise
        else:
            state[3] = radius * growth ** k
        out.append(state)
    return out


def render_video(class_index, video_index, seed, frames=16, size=64):
    """BGR uint8 frames of one video, deterministic from (seed, class_index, video_index)."""
    rng = np.random.default_rng([seed, class_index, video_index])
    _, kind, direction = CLASSES[class_index]
    background = _background(rng, size)
    texture, mask = _object_canvas(rng)
    result = []
    trajectory = _trajectory(kind, direction, rng, frames, size)
    noise = rng.standard_normal((frames, size, size, 3), dtype=np.float32) * 6.0  # per-frame sensor noise
    for (cx, cy, angle, radius), frame_noise in zip(trajectory, noise):
        matrix = cv2.getRotationMatrix2D((LOCAL / 2, LOCAL / 2), angle, radius / (LOCAL / 2 - 2))
        matrix[:, 2] += (cx - LOCAL / 2, cy - LOCAL / 2)
        obj = cv2.warpAffine(texture, matrix, (size, size), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(mask, matrix, (size, size), flags=cv2.INTER_LINEAR)[..., None]
        frame = background + alpha * (obj - background)
        frame += frame_noise
        result.append(np.clip(frame, 0, 255, out=frame).astype(np.uint8))
    return result


def video_name(class_name, index):
    return f"v_{class_name}_g{index // 4 + 1:02d}_c{index % 4 + 1:02d}"


def _write_one(job):
    path, class_index, video_index, seed, frames, size = job
    with atomic_output(path, mkdir=False) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), 25, (size, size))
        for frame in render_video(class_index, video_index, seed, frames, size):
            writer.write(frame)
        writer.release()
    return path


def generate(out, videos_per_class=200, test_videos_per_class=40, frames=16, size=64, seed=0,
             hmdb=False, n_jobs=None, progress=True):
    """Write the dataset under ``out``; returns (n_train, n_test) written."""
    out = Path(out)
    labels, videos = out / "labels", out / "videos"
    labels.mkdir(parents=True, exist_ok=True)
    jobs, train, test, hmdb_lines = [], [], [], {}
    total = videos_per_class + test_videos_per_class
    for ci, (name, _, _) in enumerate(CLASSES):
        (videos / name).mkdir(parents=True, exist_ok=True)
        remove_stale_temps(videos / name)  # videos of a killed earlier run
        for vi in range(total):
            stem = video_name(name, vi)
            jobs.append((videos / name / f"{stem}.avi", ci, vi, seed, frames, size))
            is_test = vi < test_videos_per_class  # test videos take the first groups, as UCF101
            (test if is_test else train).append(f"{name}/{stem}.avi" + ("" if is_test else f" {ci + 1}"))
            hmdb_lines.setdefault(name, []).append(f"{stem}.avi {2 if is_test else 1}")
    remove_stale_temps(labels)
    write_text(labels / "classInd.txt", "".join(f"{i + 1} {c[0]}\n" for i, c in enumerate(CLASSES)))
    write_text(labels / "trainlist01.txt", "".join(line + "\n" for line in train))
    write_text(labels / "testlist01.txt", "".join(line + "\n" for line in test))
    if hmdb:
        for name, lines in hmdb_lines.items():
            write_text(labels / f"{name}_test_split1.txt", "".join(line + "\n" for line in lines))
    n_jobs = n_jobs or os.cpu_count() or 1
    bar = _progress(len(jobs), progress)
    if n_jobs > 1:
        with multiprocessing.Pool(n_jobs) as pool:
            for _ in pool.imap_unordered(_write_one, jobs, chunksize=8):
                bar.update(1)
    else:
        for job in jobs:
            _write_one(job)
            bar.update(1)
    bar.close()
    return len(train), len(test)


def _progress(total, enabled):
    from tqdm import tqdm
    return tqdm(total=total, desc="synthetic videos", unit="video", disable=not enabled)


def main(argv=None):
    parser = ArgumentParser(description="Write a synthetic 8-class motion dataset (UCF101 layout).")
    parser.add_argument("--out", required=True, help="output directory (videos/ and labels/ are created)")
    parser.add_argument("--videos_per_class", type=int, default=200, help="training videos per class")
    parser.add_argument("--test_videos_per_class", type=int, default=40, help="test videos per class")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=64, help="frame height and width")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hmdb", action="store_true", help="also write HMDB51-style <class>_test_split1.txt")
    parser.add_argument("--n_jobs", type=int, default=0, help="processes (0 = all cores)")
    args = parser.parse_args(argv)
    n_train, n_test = generate(args.out, args.videos_per_class, args.test_videos_per_class, args.frames,
                               args.size, args.seed, args.hmdb, args.n_jobs or None)
    print(f"synthetic dataset: {len(CLASSES)} classes, {n_train} training + {n_test} test videos "
          f"of {args.frames} frames {args.size}x{args.size} in {args.out}")
    return 0


def write_video(path, frames, fourcc: str = "MJPG", fps: float = 25.0) -> Path:
    """Write BGR uint8 ``frames`` (an iterable of equal-size arrays) with OpenCV; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    try:
        for frame in frames:
            if writer is None:
                height, width = frame.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc), fps,
                                         (width, height))
                if not writer.isOpened():
                    raise UserError(f"OpenCV cannot write {fourcc} video to {path}")
            writer.write(frame)
    finally:
        if writer is not None:
            writer.release()
    return path


def moving_frames(n_frames: int, height: int = 240, width: int = 320, seed: int = 0):
    """Camera-pan-like test content: a textured scene shifting 2 px/frame, with sensor noise."""
    rng = np.random.default_rng(seed)
    scene_h, scene_w = height + n_frames + 8, width + 2 * n_frames + 8
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (scene_h, scene_w, 3)).astype(np.float32), (0, 0), 2.0)
    light = cv2.resize(rng.uniform(30, 220, (6, 8, 3)).astype(np.float32), (scene_w, scene_h),
                       interpolation=cv2.INTER_CUBIC)
    scene = 0.5 * texture + 0.5 * light
    for t in range(n_frames):
        frame = scene[t:t + height, 2 * t:2 * t + width] + rng.normal(0, 3, (height, width, 3))
        yield np.clip(frame, 0, 255).astype(np.uint8)


if __name__ == "__main__":
    sys.exit(main())
