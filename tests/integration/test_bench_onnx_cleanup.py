"""bench/model_speed.py's ONNX Runtime and OpenVINO runners leave no exported model in the temp folder; OpenVINO
INT8 (NNCF on our export) runs its convolutions in INT8; a tiny --int8 run prints the INT8 capability, rows and
ratios."""
import importlib.util
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_workloads():
    spec = importlib.util.spec_from_file_location("bench_workloads", ROOT / "bench" / "workloads.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# runner, tolerance of its softmax sums (OpenVINO may pick BF16)
RUNNERS = {"ort": ("ort_infer", 1e-5), "openvino": ("openvino_infer", 1e-2)}


@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_runner_removes_its_export(runner, tmp_path, monkeypatch):
    wl = load_workloads()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    w = wl.Workload("tiny infer", "infer", 10, 1, (3, 4, 16, 16), widen=0.25, t_size=3, classes=4)
    net = wl.ms_model(w, "native")
    net.set_train(False)
    make, atol = RUNNERS[runner]
    run = getattr(wl, make)(w, net, threads=1)
    assert list(tmp_path.iterdir()) == []
    probs = run()[0]
    assert probs.shape == (1, 4) and np.allclose(probs.sum(axis=1), 1, atol=atol)  # softmax head


def test_openvino_int8_runs_int8_convolutions(tmp_path, monkeypatch):
    """NNCF quantizes our FP32 export; OpenVINO runs its convolutions in INT8; no export left behind."""
    wl = load_workloads()
    import sys
    monkeypatch.setattr(sys, "path", [str(ROOT / "bench"), *sys.path])
    monkeypatch.setitem(sys.modules, "workloads", wl)
    spec = importlib.util.spec_from_file_location("bench_int8", ROOT / "bench" / "int8.py")
    int8 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(int8)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    w = wl.Workload("tiny infer", "infer", 10, 2, (3, 4, 16, 16), widen=0.25, t_size=3, classes=4)
    net = wl.ms_model(w, "native")
    net.set_train(False)
    run = int8.openvino_int8_infer(w, net, threads=1, clips=int8.calibration_clips(w, 3))
    assert list(tmp_path.iterdir()) == []
    assert run.int8_convolutions == 12  # all of the r3d10's: stem, 4 blocks of 2, 3 shortcuts
    probs = run()[0]
    assert probs.shape == (2, 4) and np.allclose(probs.sum(axis=1), 1, atol=1e-2)


TINY_RUN = """
import sys
sys.path.insert(0, "bench")
import workloads as wl
wl.SPEED_WORKLOADS = (wl.Workload("r3d50 infer b1", "infer", 10, 1, (3, 4, 16, 16), widen=0.25, t_size=3, classes=4),)
import model_speed
sys.exit(model_speed.main(["--quick", "--skip-capped", "--threads", "1", "--int8"]))
"""


def test_model_speed_prints_int8_capability_rows_and_ratios():
    """A --quick run of a tiny network standing in for r3d50 batch 1: the INT8 capability comes first, the INT8
    table has its row (or each runner's reason to skip), and the last line carries the three new ratios."""
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", TINY_RUN], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, GLOG_v="3"))
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("CPU INT8: ") and "flags: " in lines[0]
    header = next(line for line in lines if line.startswith("INT8 infer"))
    row = lines[lines.index(header) + 2].split()
    assert row[:3] == ["r3d50", "infer", "b1"] and len(row) == 3 + 5 + 3  # five runners, three ratios
    cells = dict(zip(("ms", "ms int8", "ort int8", "ov fp32", "ov int8"), row[3:8]))
    for runner, cell in cells.items():  # a time, or skipped with its reason
        said = any(line.split(":")[0].strip() == runner and ": skipped: " in line for line in lines)
        assert (cell == "skipped") == said and (cell == "skipped" or float(cell.rstrip("s")) > 0), (runner, cell)
    assert cells["ms"] != "skipped" and cells["ov fp32"] != "skipped" and cells["ov int8"] != "skipped"
    last = dict(part.split("=") for part in lines[-1].split())
    ours = cells["ms int8"] != "skipped"
    for key in ("infer_time_ratio_int8_vs_openvino_int8", "infer_time_ratio_int8_vs_fp32"):
        assert (last[key] != "n/a") == ours and (not ours or float(last[key]) > 0)
    assert float(last["infer_time_ratio_fp32_vs_openvino_fp32"]) > 0  # both FP32 runners always run
