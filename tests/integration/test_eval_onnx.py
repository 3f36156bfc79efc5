"""eval_onnx.py and run_eval_onnx.sh: same data, same weights -> the same numbers as eval.py. (The script's
whole run is in tests/e2e/test_deploy_agreement.py.)"""
import json
from pathlib import Path

import numpy as np
import pytest

import eval as eval_script
import eval_onnx
from tests.helpers.scripts import run_script


def _clip_scores(path):
    return [(c["video"], c["window"], c["pred"], c["score"]) for c in json.loads(Path(path).read_text())]


def test_onnx_eval_equals_mindspore_eval(onnx_workspace, tmp_path, capsys):
    ws = onnx_workspace
    assert eval_script.main(ws["args"] + [f"--inference_ckpt_path={ws['ckpt']}",
                                          f"--result_path={tmp_path / 'ms'}"]) == 0
    ms_lines = capsys.readouterr().out.strip().splitlines()[-3:]
    assert eval_onnx.main(ws["args"] + [f"--onnx_path={ws['onnx']}", f"--result_path={tmp_path / 'onnx'}"]) == 0
    onnx_lines = capsys.readouterr().out.strip().splitlines()
    assert onnx_lines[0].startswith("evaluated 24 clips of 8 videos in ")
    onnx_lines = onnx_lines[1:]
    assert onnx_lines[0].startswith("clip: ") and "top-1: " in onnx_lines[0] and "top-5: " in onnx_lines[0]
    assert onnx_lines[:3] == ms_lines
    assert "videos: ground truth 8, predicted 8, missing 0; clips: 24" in onnx_lines[2]
    a = _clip_scores(tmp_path / "ms" / "ucf101_eval_clips.json")
    b = _clip_scores(tmp_path / "onnx" / "ucf101_eval_onnx_clips.json")
    assert [x[:3] for x in a] == [x[:3] for x in b]
    np.testing.assert_allclose([x[3] for x in a], [x[3] for x in b], atol=1e-5)


def test_onnx_predictor_pads_a_fixed_batch(onnx_workspace):
    """An ONNX exported with batch 1 evaluates micro-batches of 3 (chunked, last chunk padded)."""
    from src.inference.predictors import onnx_predictor

    x = np.random.default_rng(0).standard_normal((3, 3, 4, 32, 32)).astype(np.float32)
    predict = onnx_predictor(onnx_workspace["onnx"])
    together = predict(x)
    one_by_one = np.concatenate([predict(x[i:i + 1]) for i in range(3)])
    np.testing.assert_allclose(together, one_by_one, atol=1e-6)


def test_eval_onnx_errors(onnx_workspace, tmp_path, capsys):
    ws = onnx_workspace
    assert eval_onnx.main(ws["args"] + [f"--onnx_path={tmp_path / 'none.onnx'}"]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "bad.onnx").write_text("not a model")
    assert eval_onnx.main(ws["args"] + [f"--onnx_path={tmp_path / 'bad.onnx'}"]) == 2
    assert "not a loadable ONNX model" in capsys.readouterr().err
    assert eval_onnx.main(ws["args"] + [f"--onnx_path={ws['onnx']}", "--device_target=Ascend"]) == 2
    assert "CPU or GPU" in capsys.readouterr().err


def test_eval_py_with_onnx_path_runs_onnx_runtime_as_eval_onnx_does(onnx_workspace, tmp_path, capsys):
    ws = onnx_workspace
    assert eval_onnx.main(ws["args"] + [f"--onnx_path={ws['onnx']}", f"--result_path={tmp_path / 'a'}"]) == 0
    reference = capsys.readouterr().out.strip().splitlines()[1:]
    assert eval_script.main(ws["args"] + [f"--onnx_path={ws['onnx']}", f"--result_path={tmp_path / 'b'}"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("evaluated 24 clips of 8 videos in ") and lines[1:] == reference
    assert (_clip_scores(tmp_path / "a" / "ucf101_eval_onnx_clips.json")
            == _clip_scores(tmp_path / "b" / "ucf101_eval_onnx_clips.json"))
    assert reference[0] in (tmp_path / "b" / "ucf101_eval.log").read_text()  # eval.py's log, as for a checkpoint
    assert eval_script.main(ws["args"] + [f"--onnx_path={ws['onnx']}", f"--inference_ckpt_path={ws['ckpt']}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: pass one model")


@pytest.mark.parametrize("args, message", [
    ([], "Usage: bash run_eval_onnx.sh"),
    (["my data", "a", "b", "c"], "is not a name of letters, digits"),
    (["ucf101", "/nonexistent/jpg", "b", "c"], "VIDEO_PATH"),
    (["ucf101", "{jpg}", "{ann}", "/nonexistent.onnx"], "ONNX_PATH"),
    (["ucf101", "{jpg}", "{ann}", "{onnx}", "stray"], "is not --key=value"),
])
def test_run_eval_onnx_sh_usage(onnx_workspace, tmp_path, args, message):
    args = [a.format(**onnx_workspace) for a in args]
    proc = run_script("run_eval_onnx.sh", *args, cwd=tmp_path, timeout=300)
    assert proc.returncode != 0 and message in proc.stderr
