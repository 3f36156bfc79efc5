"""bench/model_speed.py's ONNX Runtime and OpenVINO runners leave no exported model in the temp folder."""
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
