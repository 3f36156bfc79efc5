"""Evaluation in training with 2 msrun ranks: each rank runs half the windows, the shares are gathered, and
the result equals a single-process eval.py of the same checkpoint."""
import json

import pytest

import eval as eval_script
from tests.helpers.scripts import run_script
from tests.helpers.tiny import TINY_RUN_OPTIONS, tiny_run_args


@pytest.mark.slow
def test_two_ranks_evaluate_half_each_and_agree_with_eval_py(tiny_dataset, tmp_path, capsys):
    result = tmp_path / "dp"
    data = [tiny_dataset["video_path"], tiny_dataset["annotation_path"]]
    res = run_script("run_distribute_train_msrun.sh", 2, "ucf101", *data, result, "none", *TINY_RUN_OPTIONS,
                     "--n_epochs=2", "--batch_size=4", "--start_ft=conv1", "--eval_in_training=True", "--lr_max=0.05",
                     timeout=900)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    best = json.loads((result / "best_metrics.json").read_text())
    assert best["n_clips"] == 16  # all windows, although each rank ran 8
    args = tiny_run_args(tiny_dataset, tmp_path / "eval", f"--inference_ckpt_path={result / 'best.ckpt'}")
    assert eval_script.main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert best["line"] == lines[-3], (best["line"], lines[-3])
    assert lines[-1] == "videos: ground truth 8, predicted 8, missing 0; clips: 16"
