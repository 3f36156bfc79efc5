"""The launch scripts: usage errors, path checks, and a real train -> eval run through them."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY_ARGS

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
ENV = dict(os.environ, PYTHON=sys.executable)


def run(script, *args):
    return subprocess.run(["bash", str(SCRIPTS / script), *map(str, args)], capture_output=True, text=True,
                          env=ENV, cwd=ROOT, timeout=600)


@pytest.mark.parametrize("script, n_args", [
    ("run_standalone_train.sh", 6), ("run_eval.sh", 6), ("run_distribute_train.sh", 7),
    ("run_distribute_train_msrun.sh", 6), ("run_eval_onnx.sh", 4), ("run_infer_310.sh", 6)])
def test_usage_on_wrong_arguments(script, n_args):
    res = run(script, *["x"] * (n_args - 1))
    assert res.returncode != 0
    assert "Usage: bash " + script in res.stderr


@pytest.mark.parametrize("script, args, message", [
    ("run_standalone_train.sh", ["0", "ucf/101", "v", "a", "r", "none"],
     "dataset 'ucf/101' is not a name of letters, digits, _ or -"),
    ("run_standalone_train.sh", ["0", "ucf101", "/nonexistent", "a", "r", "none"],
     "VIDEO_PATH /nonexistent is not a directory"),
    ("run_standalone_train.sh", ["x", "ucf101", "/tmp", "a", "r", "none"], "DEVICE_ID 'x' is not a number"),
    ("run_standalone_train.sh", ["0", "ucf101", "/tmp", "/nonexistent.json", "r", "none"],
     "ANNOTATION_PATH /nonexistent.json not found"),
    ("run_standalone_train.sh", ["0", "ucf101", "/tmp", "/etc/hostname", "r", "/no.ckpt"],
     "PRETRAIN_PATH /no.ckpt not found"),
    ("run_standalone_train.sh", ["0", "ucf101", "/tmp", "/etc/hostname", "r", "none", "stray"],
     "extra option 'stray' is not --key=value"),
    ("run_eval.sh", ["0", "ucf101", "/tmp", "/etc/hostname", "/tmp/r", "/no.ckpt"],
     "INFERENCE_CKPT_PATH /no.ckpt not found"),
    ("run_distribute_train.sh", ["8", "/no_table.json", "ucf101", "/tmp", "/etc/hostname", "/tmp/r", "none"],
     "RANK_TABLE_FILE /no_table.json not found"),
    ("run_distribute_train_msrun.sh", ["0", "ucf101", "/tmp", "/etc/hostname", "/tmp/r", "none"],
     "DEVICE_NUM '0' is not a positive number"),
])
def test_path_and_value_checks(script, args, message):
    res = run(script, *args)
    assert res.returncode != 0 and message in res.stderr


@pytest.mark.slow
def test_standalone_train_then_eval_through_scripts(tiny_dataset, tmp_path):
    result = tmp_path / "result"
    common = [tiny_dataset["video_path"], tiny_dataset["annotation_path"], result]
    res = run("run_standalone_train.sh", 0, "ucf101", *common, "none", *TINY_ARGS, "--n_epochs=2",
              "--batch_size=8", "--eval_in_training=True", "--start_ft=conv1")
    assert res.returncode == 0, res.stderr[-2000:]
    log = (result / "train_synthetic.log").read_text()
    assert "epoch: 2 step: 3, loss is" in log and "new best video top-1" in log
    res = run("run_eval.sh", 0, "ucf101", *common, result, *TINY_ARGS)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = (result / "synthetic_eval.log").read_text().strip().splitlines()
    at = max(i for i, line in enumerate(lines) if line.startswith("clip: "))
    assert lines[at + 2].startswith("videos: ground truth 8, predicted 8")
