"""Ascend-310 flow without an Ascend: preprocess -> MINDIR (Python API) -> postprocess == eval.py."""
import json
import os
import subprocess
import sys
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest

import eval as eval_script
import export
import postprocess
import preprocess
from src.deploy.infer310 import main_mindir, read_manifest, result_name
from toy import make_checkpoint, make_dataset, tiny_args

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "run_infer_310.sh"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("infer310")
    jpg, ann = make_dataset(root)
    ckpt = make_checkpoint(root / "tiny.ckpt", conv1_t_size=5, seed=1)
    model_args = tiny_args(conv1_t_size=5)
    assert export.main([f"--ckpt_file={ckpt}", "--file_format=MINDIR", "--device_target=CPU",
                        f"--file_name={root / 'tiny'}"] + model_args) == 0
    ms.set_context(mode=ms.PYNATIVE_MODE)
    data_args = model_args + ["--device_target=CPU", f"--video_path={jpg}", f"--annotation_path={ann}"]
    return {"root": root, "jpg": jpg, "ann": ann, "ckpt": ckpt, "mindir": root / "tiny.mindir",
            "model_args": model_args, "args": data_args}


@pytest.fixture(scope="module")
def eval_line(workspace, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        assert eval_script.main(workspace["args"] + [f"--inference_ckpt_path={workspace['ckpt']}",
                                                     f"--result_path={out}"]) == 0
    ms.set_context(mode=ms.PYNATIVE_MODE)
    return buf.getvalue().strip().splitlines()[-2:]


def test_pre_run_post_equals_eval(workspace, eval_line, tmp_path, capsys):
    pre, res = tmp_path / "pre", tmp_path / "res"
    assert preprocess.main(workspace["args"] + [f"--output_path={pre}", "--batch_size=1"]) == 0
    manifest = read_manifest(pre)
    assert manifest["shape"] == [1, 3, 4, 32, 32] and len(manifest["clips"]) == 24
    assert len(list((pre / "data").glob("*.bin"))) == 24
    assert main_mindir([f"--mindir_path={workspace['mindir']}", f"--dataset_path={pre / 'data'}",
                        f"--result_path={res}"]) == 0
    first = np.fromfile(res / result_name(manifest["clips"][0]["name"]), np.float32)
    assert first.shape == (8,) and abs(float(first.sum()) - 1) < 1e-5
    capsys.readouterr()
    assert postprocess.main(workspace["model_args"] + [f"--pre_path={pre}", f"--result_dir={res}"]) == 0
    assert capsys.readouterr().out.strip().splitlines() == eval_line


def test_clips_round_trip_through_bin_files(workspace, tmp_path):
    """A .bin holds exactly the eval dataset's clip (same preprocessing, float32, C order)."""
    from src.config import load_config
    from src.data.datasets import create_eval_dataset

    pre = tmp_path / "pre"
    assert preprocess.main(workspace["args"] + [f"--output_path={pre}"]) == 0
    cfg = load_config(workspace["args"])
    batch = next(create_eval_dataset(cfg)[0].create_dict_iterator(num_epochs=1, output_numpy=True))
    clip = np.fromfile(pre / "data" / "clip_0000001.bin", np.float32).reshape(1, 3, 4, 32, 32)
    np.testing.assert_array_equal(clip[0], batch["clip"][1])
    entry = read_manifest(pre)["clips"][1]
    assert (entry["video_index"], entry["window_index"], entry["label"]) == (
        int(batch["video_index"][1]), int(batch["window_index"][1]), int(batch["label"][1]))


def test_postprocess_errors(workspace, tmp_path, capsys):
    assert postprocess.main([f"--pre_path={tmp_path / 'none'}"]) == 2
    assert "run preprocess.py first" in capsys.readouterr().err
    pre = tmp_path / "pre"
    pre.mkdir()
    (pre / "manifest.json").write_text(json.dumps({"shape": [1, 3, 4, 32, 32], "class_names": ["a", "b"],
                                                    "videos": [["v", 0]], "clips": [
                                                        {"name": "clip_0000000", "video_index": 0,
                                                         "window_index": 0, "label": 0}]}))
    assert postprocess.main([f"--pre_path={pre}", f"--result_dir={tmp_path / 'res'}"]) == 2
    assert "result files are missing" in capsys.readouterr().err


def _run(args, cwd, **env):
    env = {**os.environ, "PYTHON": sys.executable, **env}
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_run_infer_310_sh_mindir_python(workspace, eval_line, tmp_path):
    ws = workspace
    proc = _run([ws["mindir"], "ucf101", ws["jpg"], ws["ann"], "y", "0", "--backend=mindir-python",
                 *ws["model_args"]], tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert (tmp_path / "acc.log").read_text().strip().splitlines() == eval_line
    assert len(list((tmp_path / "result_Files").glob("*_0.bin"))) == 24


def test_run_infer_310_sh_without_ascend_says_what_is_missing(workspace, tmp_path):
    ws = workspace
    proc = _run([ws["mindir"], "ucf101", ws["jpg"], ws["ann"], "n", "0"], tmp_path,
                ASCEND_HOME=str(tmp_path / "no_ascend"))
    if (tmp_path / "no_ascend").exists():
        pytest.skip("unexpected Ascend directory")
    assert proc.returncode != 0
    assert "preprocess_Result/data missing" in proc.stderr  # n = reuse, but nothing was pre-processed
    (tmp_path / "preprocess_Result" / "data").mkdir(parents=True)
    proc = _run([ws["mindir"], "ucf101", ws["jpg"], ws["ann"], "n", "0"], tmp_path,
                ASCEND_HOME=str(tmp_path / "no_ascend"), MINDSPORE_PATH=str(tmp_path / "ms"))
    assert proc.returncode != 0
    assert "ASCEND_HOME" in proc.stderr and "include/api/model.h" in proc.stderr
    assert "--backend=mindir-python" in proc.stderr


@pytest.mark.parametrize("args, message", [
    ([], "Usage: bash run_infer_310.sh"),
    (["m.mindir", "ucf101", "a"], "Usage: bash run_infer_310.sh"),
    (["{mindir}", "kinetics", "a", "b"], "is not ucf101 or hmdb51"),
    (["{mindir}", "ucf101", "{jpg}", "{ann}", "maybe"], "NEED_PREPROCESS"),
    (["{mindir}", "ucf101", "{jpg}", "{ann}", "y", "x"], "DEVICE_ID"),
    (["{mindir}", "ucf101", "{jpg}", "{ann}", "y", "0", "--backend=gpu"], "backend 'gpu'"),
    (["/nonexistent.mindir", "ucf101", "{jpg}", "{ann}"], "MINDIR_PATH"),
    (["{mindir}", "ucf101", "/nonexistent", "{ann}", "y"], "VIDEO_PATH"),
])
def test_run_infer_310_sh_usage(workspace, tmp_path, args, message):
    proc = _run([a.format(**workspace) for a in args], tmp_path)
    assert proc.returncode != 0 and message in proc.stderr
