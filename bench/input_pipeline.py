"""Input pipeline benchmark: ours vs a faithful re-implementation of the original's PIL pipeline.

The work (PORTING_NOTES §5): 16 frames of 320x240 JPEG -> resize shorter side to 112 -> 112x112
center crop -> normalised float32 C,T,H,W. Both run in this process on the same frames; ours also
with 2 worker processes. Pixel differences are measured before normalisation, in 1/255 units.

    python bench/input_pipeline.py [--clips 60] [--rounds 3]
Last line: pipeline_speedup_vs_pil=<x> mean_abs_diff_255=<m> p99_abs_diff_255=<p>
"""
import argparse
import multiprocessing
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from src.data import spatial  # noqa: E402
from src.data.frames import FrameFolder  # noqa: E402
from src.data.preprocess import eval_clip  # noqa: E402

SIZE, T = 112, 16


class _Cfg(dict):
    __getattr__ = dict.__getitem__


CFG = _Cfg(sample_size=SIZE, sample_duration=T)


def make_frames(folder, n_videos=4, seed=0):
    """Realistic-looking 320x240 JPEGs: smooth background, textured moving blobs, mild sensor noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:240, 0:320].astype(np.float32)
    for v in range(n_videos):
        video = Path(folder) / f"video{v}"
        video.mkdir(parents=True)
        background = cv2.resize(rng.uniform(30, 220, (6, 8, 3)).astype(np.float32), (320, 240),
                                interpolation=cv2.INTER_CUBIC)
        texture = cv2.GaussianBlur(rng.uniform(0, 255, (240, 320, 3)).astype(np.float32), (0, 0), 1.5)
        cx, cy, vx, vy = rng.uniform(80, 240), rng.uniform(60, 180), rng.uniform(-4, 4), rng.uniform(-3, 3)
        for t in range(1, T + 1):
            mask = (((xx - cx - vx * t) / 60) ** 2 + ((yy - cy - vy * t) / 45) ** 2 < 1)[..., None]
            frame = np.where(mask, texture, background) + rng.normal(0, 3, (240, 320, 3))
            cv2.imwrite(str(video / f"image_{t:05d}.jpg"), np.clip(frame, 0, 255).astype(np.uint8),
                        [cv2.IMWRITE_JPEG_QUALITY, 90])
    return sorted(Path(folder).iterdir())


# ---- the original's pipeline: PIL decode, then per frame resize / crop / to-tensor / normalise ----
def pil_uint8_frame(path):
    image = Image.open(path).convert("RGB")
    image = Image.fromarray(np.asarray(image))  # the original passed frames as arrays, then ToPIL
    w, h = image.size
    ow, oh = (SIZE, int(SIZE * h / w)) if w <= h else (int(SIZE * w / h), SIZE)
    image = image.resize((ow, oh), Image.BILINEAR)
    left, top = int(round((ow - SIZE) / 2.0)), int(round((oh - SIZE) / 2.0))
    return image.crop((left, top, left + SIZE, top + SIZE))


def pil_clip(video):
    frames = []
    for t in range(1, T + 1):
        image = pil_uint8_frame(video / f"image_{t:05d}.jpg")
        array = np.asarray(image, np.float32).transpose(2, 0, 1) / 255.0  # ToTensor
        array = (array - spatial.MEAN[:, None, None]) / spatial.STD[:, None, None]  # Normalize
        frames.append(array)
    return np.array(frames).transpose(1, 0, 2, 3)


def ours_clip(video):
    return eval_clip(FrameFolder(video, T), list(range(1, T + 1)), CFG)


def _run(fn, videos, n_clips):
    for i in range(n_clips):
        fn(videos[i % len(videos)])


def clips_per_second(fn, videos, n_clips):
    start = time.perf_counter()
    _run(fn, videos, n_clips)
    return n_clips / (time.perf_counter() - start)


def _worker_chunk(args):
    cv2.setNumThreads(1)
    videos, n = args
    _run(ours_clip, videos, n)
    return n


def ours_with_workers(videos, n_clips, workers):
    with multiprocessing.Pool(workers, initializer=cv2.setNumThreads, initargs=(1,)) as pool:
        pool.map(_worker_chunk, [(videos, 2)] * workers)  # warm up the workers
        start = time.perf_counter()
        done = sum(pool.map(_worker_chunk, [(videos, n_clips // workers)] * workers))
        return done / (time.perf_counter() - start)


def pixel_diff(videos):
    """|ours - PIL| before normalisation, over every pixel of every benchmark clip, in 1/255 units."""
    diffs = []
    box = partial(spatial.center_box, size=SIZE)
    for video in videos:
        ours = spatial.load_clip(FrameFolder(video, T), list(range(1, T + 1)), box, SIZE)[..., ::-1]
        ref = np.stack([np.asarray(pil_uint8_frame(video / f"image_{t:05d}.jpg")) for t in range(1, T + 1)])
        diffs.append(np.abs(ours.astype(np.int16) - ref.astype(np.int16)).ravel())
    diffs = np.concatenate(diffs)
    return float(diffs.mean()), float(np.percentile(diffs, 99))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=60, help="clips per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (best kept: the machine is shared)")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)  # per-core comparison: PIL decodes on one thread too
    with tempfile.TemporaryDirectory() as tmp:
        videos = make_frames(tmp)
        ours_clip(videos[0]), pil_clip(videos[0])  # warm caches
        out = np.asarray(ours_clip(videos[0]))
        assert out.shape == (3, T, SIZE, SIZE) and out.dtype == np.float32
        pil, ours, ours2 = 0.0, 0.0, 0.0
        for _ in range(args.rounds):  # interleaved so both see the same machine load
            pil = max(pil, clips_per_second(pil_clip, videos, args.clips // 2))
            ours = max(ours, clips_per_second(ours_clip, videos, args.clips))
        ours1 = 0.0
        for _ in range(max(1, args.rounds - 1)):
            ours1 = max(ours1, ours_with_workers(videos, args.clips, 1))
            ours2 = max(ours2, ours_with_workers(videos, args.clips * 2, 2))
        mean_diff, p99_diff = pixel_diff(videos)
    print(f"original PIL per-frame pipeline: {pil:.1f} clips/s (1 core)")
    print(f"ours (OpenCV DCT-reduced decode + affine crop + one normalisation): {ours:.1f} clips/s (1 core)")
    print(f"ours with worker processes: 1 -> {ours1:.1f} clips/s, 2 -> {ours2:.1f} clips/s "
          f"({ours2 / ours1:.2f}x; needs 2 idle cores to show the scaling)")
    print(f"pipeline_speedup_vs_pil={ours / pil:.2f} mean_abs_diff_255={mean_diff:.2f} "
          f"p99_abs_diff_255={p99_diff:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
