"""make demo: the original suite's whole workflow, for real, on a synthetic motion dataset it generates, on the
CPU, from scratch, as seven timed stages (what scripts/run_demo.sh runs). Everything goes under OUT_DIR.

python -m src.launch.run_demo [OUT_DIR] [--quick]      (OUT_DIR: demo_output)
--quick: a few videos and one epoch (what `make test` runs); the accuracy then means nothing.
A re-run reuses a complete dataset made with the same options; the results are always made afresh.
"""
import shutil
import subprocess
import sys
import time
from pathlib import Path

from src import demo_summary
from src.config import load_config
from src.launch.processes import StepFailed, check_step, tee
from src.cli import ArgumentParser

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "demo_config.yaml"
# (synthetic dataset options, config overrides of every step)
FULL = (["--videos_per_class", "200", "--test_videos_per_class", "40", "--frames", "16", "--size", "64"], [])
QUICK = (["--videos_per_class", "3", "--test_videos_per_class", "1", "--frames", "10", "--size", "48"],
         ["--n_epochs=1", "--batch_size=8", "--eval_interval=1", "--inference_stride=4", "--widen_factor=0.125",
          "--num_workers=1"])


def run(*command, cwd=None) -> None:
    sys.stdout.flush()  # our lines before the step's
    check_step(subprocess.run([str(part) for part in command], cwd=cwd).returncode)


def python(*args, cwd=None) -> None:
    run(sys.executable, *args, cwd=cwd)


class Demo:
    def __init__(self, out: Path, quick: bool):
        self.out, self.data = out, out / "data"
        self.jpg, self.json = self.data / "jpg", self.data / "json" / "ucf101_01.json"
        self.data_args, self.overrides = QUICK if quick else FULL
        self.options = [f"--config_path={CONFIG}", *self.overrides]  # of every step after the dataset
        # the scripts' DATASET: it names the result files, which the summary finds by the config's name
        self.dataset_name = load_config([f"--config_path={CONFIG}"]).dataset
        self.best = out / "train" / "best.ckpt"
        self.start = time.monotonic()

    def seconds(self) -> int:
        return int(time.monotonic() - self.start)

    def dataset(self):
        done, recipe = self.data / ".done", " ".join(self.data_args)
        if done.is_file() and done.read_text().strip() == recipe:
            print(f"reusing {self.data}")
            return
        shutil.rmtree(self.data, ignore_errors=True)
        python("-m", "src.data.synthetic", "--out", self.data, *self.data_args, "--seed", "0")

    def frames(self):
        python(ROOT / "src" / "generate_video_jpgs.py", "--video_path", self.data / "videos", "--target_path",
               self.jpg, "--size", "0", "--quality", "90")  # the demo recipe was measured on frames of quality 90
        python(ROOT / "src" / "generate_ucf101_json.py", "--dir_path", self.data / "labels", "--video_path", self.jpg,
               "--dst_dir_path", self.data / "json")
        python(ROOT / "check_dataset.py", "--annotation_path", self.json, "--video_path", self.jpg)
        (self.data / ".done").write_text(" ".join(self.data_args) + "\n")

    def train(self):
        run("bash", ROOT / "scripts" / "run_standalone_train.sh", 0, self.dataset_name, self.jpg, self.json,
            self.out / "train", "none", *self.options)

    def evaluate(self):
        run("bash", ROOT / "scripts" / "run_eval.sh", 0, self.dataset_name, self.jpg, self.json, self.out / "eval",
            self.best, *self.options)

    def export(self):
        export = self.out / "export"
        export.mkdir(parents=True, exist_ok=True)
        for fmt in ("ONNX", "MINDIR"):
            python(ROOT / "export.py", *self.options, f"--ckpt_file={self.best}", f"--file_format={fmt}",
                   "--batch_size=1", f"--file_name={export / 'resnet3d'}")
        run("bash", ROOT / "scripts" / "run_eval_onnx.sh", self.dataset_name, self.jpg, self.json,
            export / "resnet3d.onnx", f"--config_path={CONFIG}", f"--result_path={export}", *self.overrides, cwd=export)

    def predict(self):
        first = (self.data / "labels" / "testlist01.txt").read_text().splitlines()[0].replace("\r", "")
        video = self.data / "videos" / first
        command = [sys.executable, str(ROOT / "predict.py"), *self.options, f"--video={video}",
                   f"--ckpt_file={self.best}", f"--labels={self.json}"]
        # predict.txt: the prediction, from its "<video>: N frames, ..." line on (not the set-up lines before it)
        check_step(tee(command, self.out / "predict.txt", start=f"{video}: "))

    def summary(self):
        check_step(demo_summary.main([f"--out={self.out}", f"--config_path={CONFIG}", f"--seconds={self.seconds()}"]))


STAGES = [
    ("synthetic motion dataset: 8 classes that only motion tells apart, as .avi videos (UCF101 layout)", Demo.dataset),
    ("frames, annotation JSON, dataset check", Demo.frames),
    ("train a ResNet3D-10 from scratch (scripts/run_standalone_train.sh, demo_config.yaml)", Demo.train),
    ("evaluate best.ckpt on the held-out videos (scripts/run_eval.sh)", Demo.evaluate),
    ("export ONNX and MINDIR (each checked against the checkpoint), evaluate the ONNX model", Demo.export),
    ("predict one held-out video (predict.py)", Demo.predict),
    ("summary", Demo.summary),
]


def run_demo(out: Path, quick: bool) -> None:
    demo = Demo(out, quick)
    out.mkdir(parents=True, exist_ok=True)
    for old in ("train", "eval", "export"):
        shutil.rmtree(out / old, ignore_errors=True)
    (out / "predict.txt").unlink(missing_ok=True)
    for number, (title, stage) in enumerate(STAGES, 1):
        print(f"\n=== [{demo.seconds()}s] {number}/{len(STAGES)} {title} ===", flush=True)
        stage(demo)


def main(argv=None) -> int:
    parser = ArgumentParser(prog="python -m src.launch.run_demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", default="demo_output", help="where everything goes")
    parser.add_argument("--quick", action="store_true", help="a few videos and one epoch (the tests' demo)")
    args = parser.parse_args(argv)
    try:
        run_demo(Path(args.out).resolve(), args.quick)
    except StepFailed as failed:  # the step said why
        return failed.status
    except KeyboardInterrupt:  # the step in the foreground had the Ctrl-C too
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
