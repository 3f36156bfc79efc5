"""`make demo` in miniature: the same script, a few videos and one epoch, run once (a module fixture) and
checked stage by stage: its artefacts, the lines it exists to print, and that a re-run reuses the dataset."""
import os
import shutil
import signal
import subprocess

import pytest

from src.config import REPO_ROOT
from tests.helpers.scripts import SCRIPTS, script_env

DEMO = ["bash", str(SCRIPTS / "run_demo.sh")]


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    """One `run_demo.sh OUT --quick`: (OUT, its CompletedProcess)."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    res = subprocess.run([*DEMO, str(out), "--quick"], capture_output=True, text=True, env=script_env(),
                         cwd=REPO_ROOT, timeout=900)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    return out, res


@pytest.mark.slow
def test_quick_demo_runs_every_stage_and_writes_every_artefact(quick_demo):
    out, res = quick_demo
    for n in range(1, 9):
        assert f"] {n}/8 " in res.stdout
    for path in ["data/videos", "data/jpg", "data/json/ucf101_01.json", "train/best.ckpt", "train/best_metrics.json",
                 "train/training_curves.png", "train/training_curves.csv", "train/config_resolved.yaml",
                 "train/train_synthetic.log", "eval/synthetic_eval.log", "eval/synthetic_eval_confusion.png",
                 "eval/synthetic_eval_videos.json", "export/resnet3d.onnx", "export/resnet3d.mindir",
                 "export/eval_onnx.log", "predict.txt", "int8/resnet3d_int8.ckpt", "int8/resnet3d_int8.onnx",
                 "int8/synthetic_eval.log", "int8/onnx/eval_onnx.log"]:
        assert (out / path).exists(), path
    for pattern in ("*_annotated.mp4", "*_layer2_cam.png", "*_layer2_cam.npy", "*_layer2_cam.mp4"):
        assert list((out / "visual").glob(pattern)), pattern


@pytest.mark.slow
def test_quick_demo_checks_data_and_exports_and_the_backends_agree(quick_demo):
    out, res = quick_demo
    text = res.stdout  # check_dataset's summary and export's parity checks are console lines by design
    assert "check_dataset: 32 videos (24 training, 8 validation), 8 classes, 32 ok, no problems" in text
    assert "parity ONNX: max abs difference" in text and "parity MINDIR: max abs difference" in text
    eval_line = [ln for ln in (out / "eval" / "synthetic_eval.log").read_text().splitlines() if ln.startswith("clip: ")]
    onnx_line = [ln for ln in (out / "export" / "eval_onnx.log").read_text().splitlines() if ln.startswith("clip: ")]
    assert eval_line and eval_line == onnx_line
    assert "INT8 eval.py:      clip: " in text and "INT8 eval_onnx.py: clip: " in text  # the full demo's: docs/int8.md
    predictions = (out / "predict.txt").read_text().splitlines()
    assert predictions[1].startswith("1. ") and predictions[5].startswith("5. ")
    last = text.splitlines()[-1]
    assert "demo finished in" in last and "held-out videos" in last


@pytest.mark.slow
def test_a_rerun_reuses_the_dataset(quick_demo, tmp_path):
    """A second run over a copy of the first one's dataset says it reuses it; stopped before it trains."""
    out, _ = quick_demo
    again = tmp_path / "demo"
    shutil.copytree(out / "data", again / "data")
    proc = subprocess.Popen([*DEMO, str(again), "--quick"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=script_env(), cwd=REPO_ROOT, start_new_session=True)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if "2/8 " in line:  # stage 1 is over
                break
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=60)
    assert f"reusing {again / 'data'}\n" in seen, "".join(seen)[-2000:]
