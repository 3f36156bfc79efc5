"""Frame extraction: generate_video_jpgs.py at several --quality values vs the original's ffmpeg command.

Sources: XVID 320x240 (written here by OpenCV), H.264 320x240 and 640x480 (libx264 through the ffmpeg
program, if installed; the larger one is shrunk to 240 px), 175 frames each (7 s at 25 fps). For each
method, alternating rounds, best time kept:
  - bytes written, wall time and CPU time (of the worker / ffmpeg processes: robust on a shared
    machine), 2 videos in parallel (ours: 2 worker processes; the original's
    ``ffmpeg -i V -vf scale=-1:240 image_%05d.jpg``: 2 at a time),
  - pixel difference to the decoded source frame (mean |diff| in 1/255, PSNR in dB),
  - the same for 112x112 training crops (frames vs the source video read directly: what the network
    sees), and clips per CPU second of the training pipeline reading those frames (16-frame center
    clips, one process).

    python bench/extraction.py [--videos 8] [--rounds 2] [--qualities 60,75,85,90,95]
Last line per codec: extraction_<codec> q<Q>_bytes_vs_ffmpeg=<r> q<Q>_time_vs_ffmpeg=<t> q<Q>_cpu_vs_ffmpeg=<c> ...
"""
import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from src.data.extract import extract_all  # noqa: E402
from src.data.frames import FrameFolder, count_frames, frame_name  # noqa: E402
from src.data.presets import ClipSpec, eval_clip  # noqa: E402
from src.data.synthetic import moving_frames, write_video  # noqa: E402

N_FRAMES, HEIGHT, WIDTH, T = 175, 240, 320, 16


def make_sources(root, n_videos):
    """{codec: [video paths]} under root/<codec>/Cls/."""
    sources = {"xvid": [write_video(root / "xvid" / "Cls" / f"v{i}.avi",
                                    moving_frames(N_FRAMES, HEIGHT, WIDTH, seed=i), "XVID")
                        for i in range(n_videos)]}
    if not shutil.which("ffmpeg"):
        return sources
    for name, (height, width) in (("h264", (HEIGHT, WIDTH)), ("h264_640x480", (480, 640))):
        paths = []
        for i in range(n_videos):
            path = root / name / "Cls" / f"v{i}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            raw = b"".join(f.tobytes() for f in moving_frames(N_FRAMES, height, width, seed=i))
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
                            "-s", f"{width}x{height}", "-r", "25", "-i", "-", "-c:v", "libx264",
                            "-pix_fmt", "yuv420p", str(path)], input=raw, check=True)
            paths.append(path)
        sources[name] = paths
    return sources


def run_ours(videos, out, quality):
    start = time.perf_counter()
    summary = extract_all(videos[0].parent.parent, out, size=240, quality=quality, n_jobs=2, progress=False)
    assert summary["failed"] == 0 and summary["done"] == len(videos)
    return time.perf_counter() - start


def _ffmpeg_one(args):
    video, folder = args
    folder.mkdir(parents=True)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-vf", "scale=-1:240",
                    str(folder / "image_%05d.jpg")], check=True)


def run_ffmpeg(videos, out, _quality=None):
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(_ffmpeg_one, [(v, out / "Cls" / v.stem) for v in videos]))
    return time.perf_counter() - start


def folder_bytes(out):
    return sum(p.stat().st_size for p in Path(out).rglob("image_*.jpg"))


def pixel_difference(videos, out):
    """(mean |diff| in 1/255, PSNR dB) of every extracted frame against the decoded source frame."""
    total, squared, count = 0.0, 0.0, 0
    for video in videos:
        cap = cv2.VideoCapture(str(video))
        number = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            number += 1
            jpeg = cv2.imread(str(Path(out) / "Cls" / video.stem / frame_name(number)))
            if jpeg.shape != frame.shape:  # shrunk at extraction: compare with the source shrunk alike
                frame = cv2.resize(frame, jpeg.shape[1::-1], interpolation=cv2.INTER_AREA)
            diff = jpeg.astype(np.float64) - frame
            total += np.abs(diff).sum()
            squared += (diff ** 2).sum()
            count += diff.size
        cap.release()
    return total / count, 10 * np.log10(255.0 ** 2 / (squared / count))


def clip_difference(videos, out, n_clips=12):
    """Mean |diff| (1/255) of 112x112 training crops read from the JPEGs vs from the source video itself."""
    from functools import partial

    from src.data import spatial
    from src.data.video import VideoFile

    starts = np.random.default_rng(2).integers(1, N_FRAMES - T - 2, n_clips)
    box = partial(spatial.center_box, size=112)
    diffs = []
    for i in range(n_clips):
        video = videos[i % len(videos)]
        folder = Path(out) / "Cls" / video.stem
        numbers = list(range(int(starts[i]), int(starts[i]) + T))
        a = spatial.load_clip(FrameFolder(folder, count_frames(folder)), numbers, box, 112).astype(np.int16)
        b = spatial.load_clip(VideoFile(video), numbers, box, 112).astype(np.int16)
        diffs.append(np.abs(a - b).mean())
    return float(np.mean(diffs))


def pipeline_speed(videos, out, n_clips=80):
    cfg = ClipSpec(sample_size=112, sample_duration=T)
    folders = [Path(out) / "Cls" / v.stem for v in videos]
    starts = np.random.default_rng(0).integers(1, N_FRAMES - T - 2, n_clips)
    start = time.process_time()  # CPU time of this process: the machine is shared
    for i in range(n_clips):
        folder = folders[i % len(folders)]
        eval_clip(FrameFolder(folder, count_frames(folder)), list(range(int(starts[i]), int(starts[i]) + T)), cfg)
    return n_clips / (time.process_time() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8, help="videos per codec")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (best time kept)")
    parser.add_argument("--qualities", default="60,75,85,90,95", help="--quality values of ours to measure")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    qualities = [int(q) for q in args.qualities.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sources = make_sources(root, args.videos)
        if "h264" not in sources:
            print("no ffmpeg program: H.264 sources and the ffmpeg reference are not measured")
        methods = [(f"ours q{q}", run_ours, q) for q in qualities]
        if shutil.which("ffmpeg"):
            methods.append(("ffmpeg default", run_ffmpeg, None))
        for codec, videos in sources.items():
            n_frames = sum(int(cv2.VideoCapture(str(v)).get(cv2.CAP_PROP_FRAME_COUNT)) for v in videos)
            best = {}
            for round_ in range(args.rounds):
                for name, run, quality in methods:
                    out = root / "out" / codec / f"{name.replace(' ', '_')}_{round_}"
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    seconds = run(videos, out, quality)
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
                    best[name] = min(best.get(name, seconds), seconds)
                    best[name, "cpu"] = min(best.get((name, "cpu"), cpu), cpu)
                    if round_ == args.rounds - 1:
                        best[name, "out"] = out
            size = cv2.VideoCapture(str(videos[0]))
            print(f"{codec}: {len(videos)} videos, {n_frames} frames of "
                  f"{int(size.get(cv2.CAP_PROP_FRAME_WIDTH))}x{int(size.get(cv2.CAP_PROP_FRAME_HEIGHT))}")
            print(f"  {'method':<15} {'MB':>7} {'wall s':>6} {'CPU s':>6} {'frames/CPU s':>12} {'mean|d|':>8} "
                  f"{'PSNR dB':>8} {'clip |d|':>8} {'clips/CPU s':>11}")
            rows = {}
            for name, _, _ in methods:
                out = best[name, "out"]
                size, seconds = folder_bytes(out), best[name]
                mean_diff, psnr = pixel_difference(videos, out)
                speed = pipeline_speed(videos, out)
                cpu = best[name, "cpu"]
                rows[name] = (size, seconds, cpu)
                print(f"  {name:<15} {size / 1e6:7.2f} {seconds:6.2f} {cpu:6.2f} {n_frames / cpu:12.0f} "
                      f"{mean_diff:8.2f} {psnr:8.2f} {clip_difference(videos, out):8.2f} {speed:11.1f}")
            if "ffmpeg default" in rows:
                ref = rows["ffmpeg default"]
                ratios = " ".join(f"q{q}_bytes_vs_ffmpeg={rows[f'ours q{q}'][0] / ref[0]:.2f} "
                                  f"q{q}_time_vs_ffmpeg={rows[f'ours q{q}'][1] / ref[1]:.2f} "
                                  f"q{q}_cpu_vs_ffmpeg={rows[f'ours q{q}'][2] / ref[2]:.2f}" for q in qualities)
                print(f"extraction_{codec} {ratios}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
