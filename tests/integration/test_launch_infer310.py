"""src/launch/run_infer310.py: the backends' commands and libraries, the work folder's checks, and a failed
inference shown with the end of its log (real processes; the whole flow runs in tests/test_infer310.py)."""
import sys

import pytest

from src.launch.processes import LaunchError
from src.launch.run_infer310 import ROOT, Work, ascend310_env, inference_command, main


def test_inference_commands(tmp_path):
    work = Work(tmp_path)
    io = ["--mindir_path=m.mindir", f"--dataset_path={tmp_path}/preprocess_Result/data",
          f"--result_path={tmp_path}/result_Files"]
    timing = [f"--time_path={tmp_path}/time_Result", "--device_id=3"]
    assert inference_command("ascend310", "m.mindir", work, 3) == [
        str(ROOT / "ascend310_infer" / "out" / "main"), *io, *timing]
    assert inference_command("lite-python", "m.mindir", work, 3) == [sys.executable, "-m", "src.deploy.lite", *io,
                                                                       *timing]
    assert inference_command("mindir-python", "m.mindir", work, 3) == [  # a CPU run times nothing
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
    with pytest.raises(LaunchError, match="LITE_HOME is not set"):
        ascend310_env({})


def args(mindir, work, *more):
    return [f"--mindir_path={mindir}", "--dataset=ucf101", f"--config_path={ROOT / 'ucf101_config.yaml'}",
            "--video_path=v", "--annotation_path=a.json", "--device_id=0", f"--work_dir={work}", *more]


def test_reuse_without_preprocessed_clips_stops_first(tmp_path, capsys):
    assert main(args(tmp_path / "m.mindir", tmp_path, "--need_preprocess=n", "--backend=mindir-python")) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"error: {tmp_path}/preprocess_Result/data missing: run with NEED_PREPROCESS=y\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_failed_inference_shows_the_end_of_its_log(tmp_path, capfd):
    (tmp_path / "preprocess_Result" / "data").mkdir(parents=True)  # but no clips in it
    (tmp_path / "bogus.mindir").write_text("not a model")
    assert main(args(tmp_path / "bogus.mindir", tmp_path, "--need_preprocess=n", "--backend=mindir-python",
                     "--", "--eval_batch_size=1")) == 1
    out, err = capfd.readouterr()
    assert out.splitlines() == [
        f"mindir: {tmp_path}/bogus.mindir  dataset: ucf101  video path: v  annotation: a.json",
        "need preprocess: n  device id: 0  backend: mindir-python",
        f"inference (mindir-python) -> {tmp_path}/result_Files (log: {tmp_path}/infer.log)"]
    log = (tmp_path / "infer.log").read_text().splitlines()
    assert log[-1] == (f"error: no .bin clips in {tmp_path}/preprocess_Result/data: run preprocess.py first "
                       "(NEED_PREPROCESS=y)")
    assert err.splitlines() == log[-20:] + [f"error: inference failed, see {tmp_path}/infer.log"]
    assert (tmp_path / "result_Files").is_dir() and not (tmp_path / "acc.log").exists()
