"""Faults injected for real into real train.py / eval.py processes: kill -9 at chosen moments, SIGTERM,
two processes on one folder, divergence, corrupted files, read-only and full folders. After each fault
the result equals the fault-free run bit for bit, or the tool stops with one `error:` line."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest

import eval as eval_script
import export
from conftest import TINY_ARGS
from tests.helpers.tiny import make_checkpoint, tiny_args

ROOT = Path(__file__).resolve().parents[2]
COMMON = ["--n_epochs=3", "--batch_size=8", "--warmup_epochs=1", "--lr_max=0.05", "--start_ft=conv1",
          "--h_flip=True", "--train_crop=random", "--eval_in_training=True", "--keep_checkpoint_max=5"]


def train_cmd(data, result, *extra):
    return [sys.executable, str(ROOT / "train.py"), *TINY_ARGS, f"--video_path={data['video_path']}",
            f"--annotation_path={data['annotation_path']}", f"--result_path={result}", *COMMON, *extra]


def run(cmd, env=None, timeout=600):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, **(env or {})})


def tensors(path):
    return {k: v.asnumpy() for k, v in ms.load_checkpoint(str(path)).items() if not isinstance(v, str)}


def assert_same_run(a, b):
    """Final training state, best.ckpt and best_metrics.json of two result folders are identical."""
    last_a, last_b = sorted(a.glob("resnet3d-*-3_3.ckpt")), sorted(b.glob("resnet3d-*-3_3.ckpt"))
    assert last_a and last_b, (list(a.iterdir()), list(b.iterdir()))
    ta, tb = tensors(last_a[0]), tensors(last_b[0])
    assert ta.keys() == tb.keys()
    worst = max(float(np.abs(ta[k].astype(np.float64) - tb[k]).max()) for k in ta)
    print(f"max weight difference to the uninterrupted run: {worst}")
    assert worst == 0.0
    assert (a / "best.ckpt").read_bytes() == (b / "best.ckpt").read_bytes()
    assert json.loads((a / "best_metrics.json").read_text()) == json.loads((b / "best_metrics.json").read_text())


@pytest.fixture(scope="module")
def reference(tiny_dataset, tmp_path_factory):
    """An uninterrupted run, and the epochs at which it saved a new best."""
    result = tmp_path_factory.mktemp("reference") / "run"
    res = run(train_cmd(tiny_dataset, result))
    assert res.returncode == 0, res.stderr[-3000:]
    best_epochs = [int(line.split(" at epoch ")[1].split(":")[0]) for line in res.stdout.splitlines()
                   if line.startswith("new best video top-1")]
    assert best_epochs
    return {"path": result, "best_epochs": best_epochs, "stdout": res.stdout}


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after_best", "between_best_files", "after_eval"])
def test_kill_around_the_best_checkpoint_resumes_to_the_same_best(tiny_dataset, reference, tmp_path, point):
    """kill -9 after the last new best was written (before the epoch checkpoint), between best.ckpt and
    best_metrics.json, and after epoch 2's evaluation."""
    result = tmp_path / "run"
    epoch = 2 if point == "after_eval" else reference["best_epochs"][-1]
    killed = run(train_cmd(tiny_dataset, result), env={"RESNET3D_KILL_AT": f"{point}:{epoch}"})
    assert killed.returncode == -signal.SIGKILL
    resumed = run(train_cmd(tiny_dataset, result, "--resume=auto"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_run(reference["path"], result)
    log = (result / "train_synthetic.log").read_text()
    assert log.count("=== ") == 2 and "epoch: 1 step: 1," in log  # appended, not truncated
    if epoch > 1:  # a checkpoint to resume from was written: the resume is marked
        assert f"resumed from {result / 'resnet3d-synthetic-'}{epoch - 1}_3.ckpt" in log


@pytest.mark.slow
def test_sigterm_saves_the_position_and_resumes_bit_identically(tiny_dataset, reference, tmp_path):
    result = tmp_path / "run"
    proc = subprocess.Popen(train_cmd(tiny_dataset, result), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=ROOT)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("epoch: 2 step: 1,"):
            proc.send_signal(signal.SIGTERM)
            break
    out = "".join(lines) + proc.stdout.read()
    assert proc.wait(timeout=300) == 128 + signal.SIGTERM, out[-3000:]
    stop = [ln for ln in out.splitlines() if ln.startswith("stopped by SIGTERM at epoch 2 step ")]
    assert stop and "resume with --resume=auto" in stop[0], out[-2000:]
    resumed = run(train_cmd(tiny_dataset, result, "--resume=auto"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout
    assert_same_run(reference["path"], result)


@pytest.mark.slow
def test_resume_refuses_changed_hyper_parameters_and_extends_n_epochs(tiny_dataset, reference, tmp_path):
    result = tmp_path / "run"
    shutil.copytree(reference["path"], result)
    (result / ".lock").unlink(missing_ok=True)
    changed = run(train_cmd(tiny_dataset, result, "--resume=auto", "--lr_max=0.5"))
    assert changed.returncode == 2
    err = changed.stderr.strip().splitlines()[-1]
    assert err.startswith("error: --resume: the config differs") and "lr_max 0.05 -> 0.5" in err
    assert "--resume_allow=[lr_max]" in err
    longer = run(train_cmd(tiny_dataset, result, "--resume=auto", "--n_epochs=4"))
    assert longer.returncode == 0, longer.stderr[-2000:]
    assert "n_epochs changed (3 -> 4): the learning-rate schedule is recomputed" in longer.stdout
    assert "epoch: 4 step: 3, loss is" in longer.stdout and (result / "resnet3d-synthetic-4_3.ckpt").is_file()
    fresh = run(train_cmd(tiny_dataset, result))
    assert fresh.returncode == 2
    assert "already holds training checkpoints of another run" in fresh.stderr and "--resume=auto" in fresh.stderr


@pytest.mark.slow
def test_a_second_process_on_a_folder_in_use_refuses_at_once(tiny_dataset, tmp_path):
    result = tmp_path / "run"
    first = subprocess.Popen(train_cmd(tiny_dataset, result, "--n_epochs=50"), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:
        for line in first.stdout:
            if line.startswith("epoch: 1 step: 1,"):
                break
        start = time.time()
        second = run(train_cmd(tiny_dataset, result, "--resume=auto"))
        assert second.returncode == 2 and time.time() - start < 60
        assert f"is in use by pid {first.pid}" in second.stderr, second.stderr[-2000:]
    finally:
        first.kill()  # kill -9: the lock must not outlive the process
        first.wait()
    after = run(train_cmd(tiny_dataset, result, "--resume=auto", "--n_epochs=1"))
    assert after.returncode == 0, after.stderr[-2000:]


@pytest.mark.slow
def test_divergence_stops_with_one_line_and_writes_no_checkpoint(tiny_dataset, tmp_path):
    result = tmp_path / "run"
    res = run(train_cmd(tiny_dataset, result, "--lr_max=1e8", "--warmup_epochs=0"))
    assert res.returncode == 2, res.stdout[-2000:]
    err = res.stderr.strip().splitlines()[-1]
    assert err.startswith("error: training diverged at epoch 1") and "NaN" in err and "--lr_max" in err
    assert not list(result.glob("*.ckpt"))
    res = run(train_cmd(tiny_dataset, tmp_path / "nan_loss", "--lr_max=1e30", "--warmup_epochs=0"))
    err = res.stderr.strip().splitlines()[-1]
    assert res.returncode == 2 and err.startswith("error: training diverged at epoch 1"), res.stderr[-2000:]
    assert not list((tmp_path / "nan_loss").glob("*.ckpt"))


def test_non_finite_checkpoints_are_refused_by_eval_export_and_predict(tiny_dataset, tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "nan.ckpt")
    params = ms.load_checkpoint(str(ckpt))
    params["layer1.0.conv1.weight"].set_data(params["layer1.0.conv1.weight"] * float("nan"))
    ms.save_checkpoint(list(params.values()), str(ckpt))
    data = [f"--video_path={tiny_dataset['video_path']}", f"--annotation_path={tiny_dataset['annotation_path']}"]
    assert eval_script.main(TINY_ARGS + data + [f"--inference_ckpt_path={ckpt}",
                                                f"--result_path={tmp_path / 'e'}"]) == 2
    assert "holds non-finite values (NaN/inf) in 1 tensors (layer1.0.conv1.weight)" in capsys.readouterr().err
    assert export.main(tiny_args() + [f"--ckpt_file={ckpt}", "--device_target=CPU", "--file_format=ONNX",
                                      f"--file_name={tmp_path / 'm'}"]) == 2
    assert "non-finite" in capsys.readouterr().err and not list(tmp_path.glob("m*"))


def test_corrupted_and_truncated_checkpoints_are_errors_that_say_so(tiny_dataset, tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "good.ckpt")
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2:len(data) // 2 + 400] = bytes(b ^ 0xFF for b in data[len(data) // 2:len(data) // 2 + 400])
    flipped, truncated = tmp_path / "flipped.ckpt", tmp_path / "truncated.ckpt"
    flipped.write_bytes(bytes(data))
    truncated.write_bytes(ckpt.read_bytes()[:len(data) // 3])
    args = TINY_ARGS + [f"--video_path={tiny_dataset['video_path']}",
                        f"--annotation_path={tiny_dataset['annotation_path']}", f"--result_path={tmp_path / 'e'}"]
    for bad in (flipped, truncated):
        assert eval_script.main(args + [f"--inference_ckpt_path={bad}"]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith(f"error: checkpoint {bad} is corrupted or truncated") and "interrupted" in err


def test_n_classes_smaller_than_the_annotation_is_an_error(tiny_dataset, tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "five.ckpt", n_classes=5)
    args = TINY_ARGS + [f"--video_path={tiny_dataset['video_path']}",
                        f"--annotation_path={tiny_dataset['annotation_path']}", f"--result_path={tmp_path / 'e'}",
                        "--n_classes=5"]
    assert eval_script.main(args + [f"--inference_ckpt_path={ckpt}"]) == 2
    assert "--n_classes=5 is smaller than the 8 classes of" in capsys.readouterr().err
    import train as train_script

    assert train_script.main(args + ["--n_epochs=1", "--batch_size=8"]) == 2
    assert "--n_classes=5 is smaller than the 8 classes of" in capsys.readouterr().err


def test_onnx_export_leaves_folder_permissions_alone(tmp_path):
    ckpt = make_checkpoint(tmp_path / "m.ckpt")
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o755)
    assert export.main(tiny_args() + [f"--ckpt_file={ckpt}", "--device_target=CPU", "--file_format=ONNX",
                                      f"--file_name={out / 'resnet3d'}"]) == 0
    assert (out / "resnet3d.onnx").is_file() and oct(out.stat().st_mode & 0o777) == oct(0o755)
    assert sorted(p.name for p in out.iterdir()) == ["resnet3d.onnx"]


def test_export_and_eval_take_a_result_folder(tiny_dataset, tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    make_checkpoint(folder / "best.ckpt")
    assert export.main(tiny_args() + [f"--ckpt_file={folder}", "--device_target=CPU", "--file_format=MINDIR",
                                      f"--file_name={tmp_path / 'm'}"]) == 0
    assert f"exported {folder / 'best.ckpt'} -> " in capsys.readouterr().out


@pytest.fixture
def mount_tmpfs(tmp_path):
    """mount(options) -> a fresh tmpfs folder; skipped where this machine does not allow mounting."""
    mounted = []

    def mount(options):
        target = tmp_path / f"mnt{len(mounted)}"
        target.mkdir()
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({res.stderr.decode().strip()})")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", str(target)], capture_output=True)


def test_eval_prints_the_accuracy_before_failing_on_a_read_only_result_path(tiny_dataset, tmp_path,
                                                                            mount_tmpfs, capsys):
    ckpt = make_checkpoint(tmp_path / "m.ckpt")
    target = mount_tmpfs("size=1m")
    subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True)
    args = TINY_ARGS + [f"--video_path={tiny_dataset['video_path']}",
                        f"--annotation_path={tiny_dataset['annotation_path']}", f"--result_path={target}",
                        f"--inference_ckpt_path={ckpt}"]
    assert eval_script.main(args) == 2
    captured = capsys.readouterr()
    assert any(line.startswith("clip: ") for line in captured.out.splitlines())
    assert captured.err.strip().splitlines()[-1].startswith("error: ")
    file_as_folder = tmp_path / "a_file"
    file_as_folder.write_text("x")
    assert eval_script.main(args[:-2] + [f"--result_path={file_as_folder}", f"--inference_ckpt_path={ckpt}"]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err


@pytest.mark.slow
def test_a_full_disk_stops_training_with_one_line_and_no_partial_files(tiny_dataset, tmp_path, mount_tmpfs):
    target = mount_tmpfs("size=400k")
    res = run(train_cmd(tiny_dataset, target / "run", "--n_epochs=1"))
    assert res.returncode == 2, res.stderr[-2000:]
    err = res.stderr.strip().splitlines()[-1]
    assert err.startswith("error: cannot write ") and "free space" in err, err
    assert not [p for p in (target / "run").iterdir() if ".tmp" in p.name]


def _copy_dataset(tiny_dataset, tmp_path):
    jpg = tmp_path / "jpg"
    shutil.copytree(tiny_dataset["video_path"], jpg)
    return jpg


def _run_args(tiny_dataset, jpg, result, *extra):
    return TINY_ARGS + [f"--video_path={jpg}", f"--annotation_path={tiny_dataset['annotation_path']}",
                        f"--result_path={result}", *extra]


def test_a_zero_byte_frame_is_one_error_line_in_training(tiny_dataset, tmp_path, capsys):
    import train as train_script

    jpg = _copy_dataset(tiny_dataset, tmp_path)
    for frame in jpg.glob("*/*/image_0000[1-8].jpg"):
        frame.write_bytes(b"")
    assert train_script.main(_run_args(tiny_dataset, jpg, tmp_path / "r", "--n_epochs=1", "--batch_size=8",
                                       "--num_workers=1")) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: frame ") and "is empty (0 bytes)" in err, err


def test_a_corrupt_validation_frame_keeps_the_epoch_checkpoint(tiny_dataset, tmp_path, capsys):
    import json as json_module

    import train as train_script

    jpg = _copy_dataset(tiny_dataset, tmp_path)
    database = json_module.loads(Path(tiny_dataset["annotation_path"]).read_text())["database"]
    video, value = next((v, e) for v, e in database.items() if e["subset"] == "validation")
    (jpg / value["annotations"]["label"] / video / "image_00002.jpg").write_bytes(b"not a jpeg at all")
    result = tmp_path / "r"
    assert train_script.main(_run_args(tiny_dataset, jpg, result, "--n_epochs=2", "--batch_size=8",
                                       "--eval_in_training=True", "--num_workers=1")) == 2
    assert "cannot be decoded" in capsys.readouterr().err
    assert (result / "resnet3d-synthetic-1_3.ckpt").is_file()  # the epoch's training is kept


def test_input_channels_that_do_not_match_the_data(tiny_dataset, tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "m.ckpt", n_input_channels=1)
    args = _run_args(tiny_dataset, tiny_dataset["video_path"], tmp_path / "e", "--n_input_channels=1",
                     f"--inference_ckpt_path={ckpt}")
    assert eval_script.main(args) == 2
    assert "--n_input_channels=1 does not match the data" in capsys.readouterr().err


def test_an_onnx_model_for_another_clip_size_is_refused(tiny_dataset, tmp_path, capsys):
    import eval_onnx

    ckpt = make_checkpoint(tmp_path / "m.ckpt")
    assert export.main(tiny_args() + [f"--ckpt_file={ckpt}", "--device_target=CPU", "--file_format=ONNX",
                                      f"--file_name={tmp_path / 'm'}"]) == 0
    capsys.readouterr()
    args = _run_args(tiny_dataset, tiny_dataset["video_path"], tmp_path / "e", f"--onnx_path={tmp_path / 'm.onnx'}",
                     "--sample_size=40")
    assert eval_onnx.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "takes clips of 3x4x32x32 but the config gives 3x4x40x40" in err and "--sample_size" in err
