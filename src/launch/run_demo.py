"""make demo, as scripts/run_demo.sh [OUT_DIR] [--quick] describes it: the original suite's whole workflow on a
synthetic motion dataset, in eight timed stages, everything under OUT_DIR (demo_output); a complete dataset made
with the same options is reused."""
import shutil
import sys
import time
from pathlib import Path

from src import demo_summary
from src.config import load_config
from src.launch.processes import ROOT, check_step, run_step, tee

CONFIG = ROOT / "demo_config.yaml"
# (synthetic dataset options, config overrides of every step)
FULL = (["--videos_per_class", "200", "--test_videos_per_class", "40", "--frames", "16", "--size", "64"], [])
QUICK = (["--videos_per_class", "3", "--test_videos_per_class", "1", "--frames", "10", "--size", "48"],
         ["--n_epochs=1", "--batch_size=8", "--eval_interval=1", "--inference_stride=4", "--widen_factor=0.125",
          "--num_workers=1"])


def python(*args, **popen) -> None:
    run_step(sys.executable, *args, **popen)


def script(name, *args, **popen) -> None:
    run_step("bash", ROOT / "scripts" / name, *args, **popen)


class Demo:
    """The stages, in order; each one's docstring is its title."""

    def __init__(self, out: Path, quick: bool):
        self.out, self.data, self.best = out, out / "data", out / "train" / "best.ckpt"
        self.jpg, self.json = self.data / "jpg", self.data / "json" / "ucf101_01.json"
        self.data_args, self.overrides = QUICK if quick else FULL
        self.options = [f"--config_path={CONFIG}", *self.overrides]  # of every step after the dataset
        # the scripts' DATASET: it names the result files, which the summary finds by the config's name
        self.dataset_name = load_config([f"--config_path={CONFIG}"]).dataset
        self.start = time.monotonic()

    def dataset(self):
        """synthetic motion dataset: 8 classes that only motion tells apart, as .avi videos (UCF101 layout)"""
        done = self.data / ".done"
        if done.is_file() and done.read_text().strip() == " ".join(self.data_args):
            print(f"reusing {self.data}")
            return
        shutil.rmtree(self.data, ignore_errors=True)
        python("-m", "src.data.synthetic", "--out", self.data, *self.data_args, "--seed", "0")

    def frames(self):
        """frames, annotation JSON, dataset check"""
        python(ROOT / "src" / "generate_video_jpgs.py", "--video_path", self.data / "videos", "--target_path",
               self.jpg, "--size", "0", "--quality", "90")  # the demo recipe was measured on frames of quality 90
        python(ROOT / "src" / "generate_ucf101_json.py", "--dir_path", self.data / "labels", "--video_path", self.jpg,
               "--dst_dir_path", self.data / "json")
        python(ROOT / "check_dataset.py", "--annotation_path", self.json, "--video_path", self.jpg)
        (self.data / ".done").write_text(" ".join(self.data_args) + "\n")

    def train(self):
        """train a ResNet3D-10 from scratch (scripts/run_standalone_train.sh, demo_config.yaml)"""
        script("run_standalone_train.sh", 0, self.dataset_name, self.jpg, self.json, self.out / "train", "none",
               *self.options)

    def evaluate(self):
        """evaluate best.ckpt on the held-out videos (scripts/run_eval.sh)"""
        script("run_eval.sh", 0, self.dataset_name, self.jpg, self.json, self.out / "eval", self.best, *self.options)

    def export(self):
        """export ONNX and MINDIR (each checked against the checkpoint), evaluate the ONNX model"""
        export = self.out / "export"
        export.mkdir(parents=True, exist_ok=True)
        for fmt in ("ONNX", "MINDIR"):
            python(ROOT / "export.py", *self.options, f"--ckpt_file={self.best}", f"--file_format={fmt}",
                   "--batch_size=1", f"--file_name={export / 'resnet3d'}")
        script("run_eval_onnx.sh", self.dataset_name, self.jpg, self.json, export / "resnet3d.onnx",
               f"--config_path={CONFIG}", f"--result_path={export}", *self.overrides, cwd=export)

    def int8(self):
        """quantize best.ckpt to INT8 (quantize.py); evaluate it (eval.py) and its QDQ ONNX export (eval_onnx.py)"""
        int8 = self.out / "int8"
        model, onnx = int8 / "resnet3d_int8.ckpt", int8 / "resnet3d_int8"
        python(ROOT / "quantize.py", *self.options, f"--ckpt_file={self.best}", f"--video_path={self.jpg}",
               f"--annotation_path={self.json}", f"--output_path={model}")
        script("run_eval.sh", 0, self.dataset_name, self.jpg, self.json, int8, model, *self.options)
        python(ROOT / "export.py", *self.options, f"--ckpt_file={model}", "--file_format=ONNX", f"--file_name={onnx}")
        script("run_eval_onnx.sh", self.dataset_name, self.jpg, self.json, f"{onnx}.onnx", f"--config_path={CONFIG}",
               f"--result_path={int8 / 'onnx'}", *self.overrides, cwd=int8)

    def predict(self):
        """predict one held-out video, draw its labels, and where the model looks (predict.py, explain.py)"""
        first = (self.data / "labels" / "testlist01.txt").read_text().splitlines()[0].replace("\r", "")
        video, visual = self.data / "videos" / first, self.out / "visual"
        command = [sys.executable, str(ROOT / "predict.py"), *self.options, f"--video={video}",
                   f"--ckpt_file={self.best}", f"--labels={self.json}",
                   f"--annotate={visual / (video.stem + '_annotated.mp4')}"]
        # predict.txt: the prediction, from its "<video>: N frames, ..." line on (not the set-up lines before it)
        check_step(tee(command, self.out / "predict.txt", start=f"{video}: "))
        # layer2: the demo's 32x32 clips leave layer4 1x1 in space, layer2 4x4
        python(ROOT / "explain.py", *self.options, f"--video={video}", f"--ckpt_file={self.best}",
               "--cam_layer=layer2", f"--result_path={visual}")

    def summary(self):
        """summary"""
        seconds = int(time.monotonic() - self.start)
        check_step(demo_summary.main([f"--out={self.out}", f"--config_path={CONFIG}", f"--seconds={seconds}"]))


STAGES = [Demo.dataset, Demo.frames, Demo.train, Demo.evaluate, Demo.export, Demo.int8, Demo.predict, Demo.summary]


def launch(argv, _env) -> int:
    out = Path(next((arg for arg in argv if arg != "--quick"), "demo_output")).resolve()
    demo = Demo(out, quick="--quick" in argv)
    out.mkdir(parents=True, exist_ok=True)
    for old in ("train", "eval", "export", "int8"):  # the results are always made afresh
        shutil.rmtree(out / old, ignore_errors=True)
    (out / "predict.txt").unlink(missing_ok=True)
    for number, stage in enumerate(STAGES, 1):
        print(f"\n=== [{int(time.monotonic() - demo.start)}s] {number}/{len(STAGES)} {stage.__doc__} ===", flush=True)
        stage(demo)
    return 0
