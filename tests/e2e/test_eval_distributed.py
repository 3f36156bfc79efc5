"""Evaluation in training with 2 msrun ranks: each rank runs half the windows, the shares are gathered, and
the result equals a single-process eval.py of the same checkpoint."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import eval as eval_script
from conftest import TINY_ARGS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_ranks_evaluate_half_each_and_agree_with_eval_py(tiny_dataset, tmp_path, capsys):
    result = tmp_path / "dp"
    data = [tiny_dataset["video_path"], tiny_dataset["annotation_path"]]
    res = subprocess.run(["bash", str(ROOT / "scripts" / "run_distribute_train_msrun.sh"), "2", "ucf101", *data,
                          str(result), "none", *TINY_ARGS, "--n_epochs=2", "--batch_size=4", "--start_ft=conv1",
                          "--eval_in_training=True", "--lr_max=0.05"],
                         capture_output=True, text=True, cwd=ROOT, timeout=900,
                         env=dict(os.environ, PYTHON=sys.executable))
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    best = json.loads((result / "best_metrics.json").read_text())
    assert best["n_clips"] == 16  # all windows, although each rank ran 8
    args = TINY_ARGS + [f"--video_path={data[0]}", f"--annotation_path={data[1]}",
                        f"--result_path={tmp_path / 'eval'}", f"--inference_ckpt_path={result / 'best.ckpt'}"]
    assert eval_script.main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert best["line"] == lines[-3], (best["line"], lines[-3])
    assert lines[-1] == "videos: ground truth 8, predicted 8, missing 0; clips: 16"
