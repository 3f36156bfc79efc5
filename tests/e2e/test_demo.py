"""`make demo` in miniature: the same script, a few videos and one epoch; checks every artefact and line."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_demo_runs_every_stage(tmp_path):
    out = tmp_path / "demo"
    env = dict(os.environ, PYTHON=sys.executable)
    res = subprocess.run(["bash", str(ROOT / "scripts" / "run_demo.sh"), str(out), "--quick"], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=900)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    text = res.stdout
    for n in range(1, 8):
        assert f"] {n}/7 " in text
    for path in ["data/videos", "data/jpg", "data/json/ucf101_01.json", "train/best.ckpt", "train/best_metrics.json",
                 "train/training_curves.png", "train/training_curves.csv", "train/config_resolved.yaml",
                 "train/train_synthetic.log", "eval/synthetic_eval.log", "eval/synthetic_eval_confusion.png",
                 "eval/synthetic_eval_videos.json", "export/resnet3d.onnx", "export/resnet3d.mindir",
                 "export/eval_onnx.log", "predict.txt"]:
        assert (out / path).exists(), path
    assert "check_dataset: 32 videos (24 training, 8 validation), 8 classes, 32 ok, no problems" in text
    assert "parity ONNX: max abs difference" in text and "parity MINDIR: max abs difference" in text
    eval_line = [ln for ln in (out / "eval" / "synthetic_eval.log").read_text().splitlines() if ln.startswith("clip: ")]
    onnx_line = [ln for ln in (out / "export" / "eval_onnx.log").read_text().splitlines() if ln.startswith("clip: ")]
    assert eval_line and eval_line == onnx_line
    predictions = (out / "predict.txt").read_text().splitlines()
    assert predictions[1].startswith("1. ") and len(predictions) == 6
    assert "demo finished in" in text.splitlines()[-1] and "held-out videos" in text.splitlines()[-1]
    # a second run reuses the dataset and replaces the results
    res = subprocess.run(["bash", str(ROOT / "scripts" / "run_demo.sh"), str(out), "--quick"], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=900)
    assert res.returncode == 0 and f"reusing {out / 'data'}" in res.stdout
