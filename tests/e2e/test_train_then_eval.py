"""A short training then eval of its best checkpoint, through train.py / eval.py and through the launch
scripts: every artefact is written and the contract lines (step/epoch, accuracy, videos) are printed."""
import pytest

import eval as eval_script
import train as train_script
from tests.helpers.scripts import run_script
from tests.helpers.tiny import TINY_RUN_OPTIONS


@pytest.mark.slow
def test_train_then_eval_scripts(tiny_args, tmp_path, capsys):
    assert train_script.main(tiny_args + ["--n_epochs=2", "--batch_size=8", "--eval_in_training=True",
                                          "--keep_checkpoint_max=1", "--start_ft=conv1"]) == 0
    out = capsys.readouterr().out
    assert "epoch: 2 step: 3, loss is" in out and "per step time" in out and "clips/s" in out  # the contract lines
    result = tmp_path / "result"
    names = sorted(p.name for p in result.iterdir())
    for expected in ("best.ckpt", "best_metrics.json", "config_resolved.yaml", "training_curves.csv",
                     "training_curves.png", "epoch_summary.csv", "resnet3d-synthetic-2_3.ckpt"):
        assert expected in names
    assert "resnet3d-synthetic-1_3.ckpt" not in names  # keep_checkpoint_max=1
    assert eval_script.main(tiny_args + [f"--inference_ckpt_path={result / 'best.ckpt'}", "--eval_subset=test"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-3].startswith("clip: ") and "top-1: " in lines[-3] and "%  top-5: " in lines[-3]
    assert lines[-2].startswith("mean class accuracy: ")
    assert lines[-1] == "videos: ground truth 8, predicted 8, missing 0; clips: 16"
    for name in ("synthetic_eval_clips.json", "synthetic_eval_videos.json", "synthetic_eval_confusion.png"):
        assert (result / name).is_file()


@pytest.mark.slow
def test_standalone_train_then_eval_through_scripts(tiny_dataset, tmp_path):
    result = tmp_path / "result"
    common = [tiny_dataset["video_path"], tiny_dataset["annotation_path"], result]
    res = run_script("run_standalone_train.sh", 0, "ucf101", *common, "none", *TINY_RUN_OPTIONS, "--n_epochs=2",
                     "--batch_size=8", "--eval_in_training=True", "--start_ft=conv1")
    assert res.returncode == 0, res.stderr[-2000:]
    log = (result / "train_synthetic.log").read_text()
    assert "epoch: 2 step: 3, loss is" in log and "new best video top-1" in log
    res = run_script("run_eval.sh", 0, "ucf101", *common, result, *TINY_RUN_OPTIONS)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = (result / "synthetic_eval.log").read_text().strip().splitlines()
    at = max(i for i, line in enumerate(lines) if line.startswith("clip: "))
    assert lines[at + 2].startswith("videos: ground truth 8, predicted 8")
