"""The launch scripts: usage errors and path checks, before anything runs. (A real train -> eval run through
them is in tests/e2e/test_train_then_eval.py.)"""
import pytest

from tests.helpers.scripts import run_script


@pytest.mark.parametrize("script, n_args", [
    ("run_standalone_train.sh", 6), ("run_eval.sh", 6), ("run_distribute_train.sh", 7),
    ("run_distribute_train_msrun.sh", 6), ("run_eval_onnx.sh", 4), ("run_infer_310.sh", 6)])
def test_usage_on_wrong_arguments(script, n_args):
    res = run_script(script, *["x"] * (n_args - 1))
    assert res.returncode != 0
    assert "Usage: bash " + script in res.stderr


@pytest.mark.parametrize("script, args, message", [
    ("run_standalone_train.sh", ["0", "my data", "v", "a", "r", "none"],
     "dataset 'my data' is not a name of letters, digits, _ or -"),
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
    res = run_script(script, *args)
    assert res.returncode != 0 and message in res.stderr
