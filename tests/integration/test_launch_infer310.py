"""src/launch/run_infer310.py and the backends' commands and libraries (src/deploy/infer310.py), the work
folder's checks, and a failed step told once, with the end of its log, leaving no empty result folder (real
processes; the whole flow runs in tests/integration/test_infer310.py and tests/e2e/test_deploy_agreement.py)."""
import sys

import pytest

from src.config import REPO_ROOT as ROOT
from src.deploy.infer310 import ascend310_env, inference_command
from src.errors import UserError
from src.launch.processes import run_launcher
from src.launch.run_infer310 import launch


def test_inference_commands(tmp_path):
    io = ["--mindir_path=m.mindir", f"--dataset_path={tmp_path}/preprocess_Result/data",
          f"--result_path={tmp_path}/result_Files"]
    timing = [f"--time_path={tmp_path}/time_Result", "--device_id=3"]
    assert inference_command("ascend310", "m.mindir", tmp_path, 3) == [
        str(ROOT / "ascend310_infer" / "out" / "main"), *io, *timing]
    assert inference_command("lite-python", "m.mindir", tmp_path, 3) == [sys.executable, "-m", "src.deploy.lite",
                                                                          *io, *timing]
    assert inference_command("mindir-python", "m.mindir", tmp_path, 3) == [  # a CPU run times nothing
        sys.executable, "-m", "src.deploy.mindir_python", *io, "--device_id=3"]


def test_ascend310_library_path(tmp_path):
    lite, ascend = tmp_path / "lite", tmp_path / "ascend"
    lite_dirs = [f"{lite}/runtime/lib", f"{lite}/runtime/third_party/dnnl", f"{lite}/tools/converter/lib"]
    env = ascend310_env({"LITE_HOME": str(lite), "ASCEND_HOME": str(ascend), "LD_LIBRARY_PATH": "/opt/x"})
    assert env["LD_LIBRARY_PATH"].split(":") == [*lite_dirs, "/opt/x"]  # no toolkit installed there
    (ascend / "ascend-toolkit").mkdir(parents=True)
    env = ascend310_env({"LITE_HOME": str(lite), "ASCEND_HOME": str(ascend)})
    assert env["LD_LIBRARY_PATH"].split(":") == [f"{ascend}/ascend-toolkit/latest/lib64", f"{ascend}/driver/lib64",
                                                 *lite_dirs, ""]
    with pytest.raises(UserError, match="LITE_HOME is not set"):
        ascend310_env({})


def args(mindir, need_preprocess, backend, *extra):
    """What scripts/run_infer_310.sh passes."""
    return [str(mindir), "ucf101", str(ROOT / "ucf101_config.yaml"), "v", "a.json", need_preprocess, "0", backend,
            *extra]


def test_reuse_without_preprocessed_clips_stops_first(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_launcher(launch, args(tmp_path / "m.mindir", "n", "mindir-python")) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"error: {tmp_path}/preprocess_Result/data missing: run with NEED_PREPROCESS=y\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_failed_inference_is_told_once_and_leaves_no_empty_folder(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "preprocess_Result" / "data").mkdir(parents=True)  # but no clips in it
    (tmp_path / "bogus.mindir").write_text("not a model")
    assert run_launcher(launch, args(tmp_path / "bogus.mindir", "n", "mindir-python", "--eval_batch_size=1")) == 1
    out, err = capfd.readouterr()
    assert out.splitlines() == [
        f"mindir: {tmp_path}/bogus.mindir  dataset: ucf101  video path: v  annotation: a.json",
        "need preprocess: n  device id: 0  backend: mindir-python",
        f"inference (mindir-python) -> {tmp_path}/result_Files (log: {tmp_path}/infer.log)"]
    log = (tmp_path / "infer.log").read_text().splitlines()
    assert log[-1] == (f"error: no .bin clips in {tmp_path}/preprocess_Result/data: run preprocess.py first "
                       "(NEED_PREPROCESS=y)")
    assert err.splitlines() == [f"inference | {line}" for line in log[-20:]] + [
        f"error: inference exited with code 2; its log: {tmp_path}/infer.log"]
    assert [line for line in err.splitlines() if line.startswith("error:")] == [err.splitlines()[-1]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bogus.mindir", "infer.log", "preprocess_Result"]


def test_failed_build_is_told_once_and_starts_nothing(tmp_path, monkeypatch, capfd):
    """The ascend310 backend without an Ascend: build.sh's own message, once, then the one error line."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASCEND_HOME", str(tmp_path / "no_ascend"))
    monkeypatch.delenv("LITE_HOME", raising=False)
    (tmp_path / "preprocess_Result" / "data").mkdir(parents=True)
    assert run_launcher(launch, args(tmp_path / "m.mindir", "n", "ascend310")) == 1
    err = capfd.readouterr().err.splitlines()
    assert err[0] == "ascend310_infer/build.sh | error: cannot build ascend310_infer here; missing:"
    assert sum("--backend=mindir-python" in line for line in err) == 1
    assert [line for line in err if line.startswith("error:")] == [
        f"error: ascend310_infer/build.sh exited with code 1; its log: {tmp_path}/build.log"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build.log", "preprocess_Result"]
