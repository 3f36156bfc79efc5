"""The deployment paths end to end print eval.py's result lines: run_eval_onnx.sh, run_infer_310.sh with
the MINDIR Python backend, and a multi-view (3 clips x 3 crops) eval through eval_onnx.py and the 310 steps.
These lines are the contract output of each path, so they are compared as text. (Fast checks of the same
tools are in tests/integration/test_eval_onnx.py, test_infer310.py and test_views.py.)"""
import csv

import pytest

import eval as eval_script
import eval_onnx
import postprocess
import preprocess
from src.deploy.mindir_python import main as main_mindir
from tests.helpers.scripts import run_script
from tests.helpers.tiny import tiny_options


def result_lines(out):
    """The three result lines (clip / mean class accuracy / videos) of an evaluation's output."""
    lines = out.strip().splitlines()
    at = max(i for i, line in enumerate(lines) if line.startswith("clip: "))
    return lines[at:at + 3]


@pytest.mark.slow
def test_run_eval_onnx_sh_logs_the_same_line(onnx_workspace, tmp_path, capsys):
    ws = onnx_workspace
    assert eval_onnx.main(ws["args"] + [f"--onnx_path={ws['onnx']}", f"--result_path={tmp_path / 'r'}"]) == 0
    expected = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("clip: "))
    extra = tiny_options(conv1_t_size=3) + [f"--result_path={tmp_path / 'r2'}"]
    proc = run_script("run_eval_onnx.sh", "ucf101", ws["jpg"], ws["ann"], ws["onnx"], *extra, cwd=tmp_path,
                      timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert expected in proc.stdout
    assert expected in (tmp_path / "r2" / "eval_onnx.log").read_text()  # beside the results (--result_path)
    proc = run_script("run_eval_onnx.sh", "ucf101", ws["jpg"], ws["ann"], ws["onnx"], *tiny_options(conv1_t_size=3),
                      cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert expected in (tmp_path / "results" / "ucf101" / "eval_onnx.log").read_text()  # the default folder
    assert not (tmp_path / "eval_onnx.log").exists()


@pytest.mark.slow
def test_run_infer_310_sh_mindir_python(infer310_workspace, infer310_eval_lines, tmp_path):
    ws = infer310_workspace
    proc = run_script("run_infer_310.sh", ws["mindir"], "ucf101", ws["jpg"], ws["ann"], "y", "0",
                      "--backend=mindir-python", *ws["model_args"], cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert (tmp_path / "acc.log").read_text().strip().splitlines() == infer310_eval_lines
    assert len(list((tmp_path / "result_Files").glob("*_0.bin"))) == 24


@pytest.mark.slow
def test_multi_view_eval_agrees_through_eval_onnx_and_the_310_backend(views_workspace, tmp_path, capsys):
    ws = views_workspace
    root, args = ws["root"], ws["args"]
    assert eval_script.main(args + [f"--inference_ckpt_path={ws['ckpt']}", f"--result_path={tmp_path / 'a'}"]) == 0
    ms_report = result_lines(capsys.readouterr().out)
    assert ms_report[0].endswith("  (3 clips x 3 crops)") and ms_report[2].endswith("clips: 72")  # 8 x 3 x 3
    assert eval_onnx.main(args + [f"--onnx_path={root / 'm.onnx'}", f"--result_path={tmp_path / 'b'}"]) == 0
    assert result_lines(capsys.readouterr().out) == ms_report
    pre, res = tmp_path / "pre", tmp_path / "res"
    assert preprocess.main(args + [f"--output_path={pre}"]) == 0
    assert main_mindir([f"--mindir_path={root / 'm.mindir'}", f"--dataset_path={pre / 'data'}",
                        f"--result_path={res}"]) == 0
    capsys.readouterr()
    assert postprocess.main(args + [f"--pre_path={pre}", f"--result_dir={res}"]) == 0
    assert result_lines(capsys.readouterr().out) == ms_report
    # the per-class CSV adds up to the printed overall top-1
    with open(tmp_path / "a" / "synthetic_eval_per_class.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and sum(int(r["videos"]) for r in rows) == 8
    top1 = float(ms_report[0].split("top-1: ")[1].split("%")[0])
    assert sum(float(r["top1"]) * int(r["videos"]) for r in rows) / 8 * 100 == pytest.approx(top1, abs=0.05)
