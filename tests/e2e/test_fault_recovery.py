"""Faults injected for real into real train.py processes: kill -9 at chosen moments, SIGTERM, two
processes on one folder, divergence, a full disk. After each fault the result equals the fault-free run bit
for bit, or the tool stops with one `error:` line. (The fast fault checks are in
tests/integration/test_reliability.py.) The runs use the configs' amp_level auto: on a CPU with native BF16
they train with BF16 convolutions (the reference run checks that it did), elsewhere in FP32, so the
guarantees are checked for the precision each machine trains at by default."""
import csv
import json
import os
import signal
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from src.config import REPO_ROOT
from src.ops import fast_conv3d_status
from src.ops.isa import bf16_missing
from tests.helpers.tiny import TINY_RUN_OPTIONS, checkpoint_tensors

COMMON = ["--n_epochs=3", "--batch_size=8", "--warmup_epochs=1", "--lr_max=0.05", "--start_ft=conv1",
          "--h_flip=True", "--train_crop=random", "--eval_in_training=True", "--keep_checkpoint_max=5"]


def train_command(data, result, *extra):
    return [sys.executable, str(REPO_ROOT / "train.py"), *TINY_RUN_OPTIONS, f"--video_path={data['video_path']}",
            f"--annotation_path={data['annotation_path']}", f"--result_path={result}", *COMMON, *extra]


def run_command(cmd, env=None, timeout=600):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT,
                          env={**os.environ, **(env or {})})


def assert_same_run(a, b):
    """Final training state, best.ckpt and best_metrics.json of two result folders are identical."""
    last_a, last_b = sorted(a.glob("resnet3d-*-3_3.ckpt")), sorted(b.glob("resnet3d-*-3_3.ckpt"))
    assert last_a and last_b, (list(a.iterdir()), list(b.iterdir()))
    ta, tb = checkpoint_tensors(last_a[0]), checkpoint_tensors(last_b[0])
    assert ta.keys() == tb.keys()
    worst = max(float(np.abs(ta[k].astype(np.float64) - tb[k]).max()) for k in ta)
    print(f"max weight difference to the uninterrupted run: {worst}")
    assert worst == 0.0
    assert (a / "best.ckpt").read_bytes() == (b / "best.ckpt").read_bytes()
    assert json.loads((a / "best_metrics.json").read_text()) == json.loads((b / "best_metrics.json").read_text())


def new_best_epochs(result):
    """The epochs at which a run saved a new best: its validation top-1 beat every earlier epoch's
    (epoch_summary.csv; with 8 videos the 4-decimal values are exact)."""
    with open(result / "epoch_summary.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["val_top1"]]
    epochs, best = [], -1.0
    for row in rows:
        if float(row["val_top1"]) > best:
            epochs.append(int(row["epoch"]))
            best = float(row["val_top1"])
    return epochs


@pytest.fixture(scope="module")
def reference(tiny_dataset, tmp_path_factory):
    """An uninterrupted run, and the epochs at which it saved a new best."""
    result = tmp_path_factory.mktemp("reference") / "run"
    res = run_command(train_command(tiny_dataset, result))
    assert res.returncode == 0, res.stderr[-3000:]
    bf16_here = bf16_missing(conv_impl="fast" if fast_conv3d_status()[0] else "native")[0] is None
    assert ("amp_level=auto: O2, BF16 convolutions" in res.stdout) == bf16_here, res.stdout[-2000:]
    best_epochs = new_best_epochs(result)
    assert best_epochs and json.loads((result / "best_metrics.json").read_text())["epoch"] == best_epochs[-1]
    return {"path": result, "best_epochs": best_epochs}


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after_best", "between_best_files", "after_eval"])
def test_kill_around_the_best_checkpoint_resumes_to_the_same_best(tiny_dataset, reference, tmp_path, point):
    """kill -9 after the last new best was written (before the epoch checkpoint), between best.ckpt and
    best_metrics.json, and after epoch 2's evaluation."""
    result = tmp_path / "run"
    epoch = 2 if point == "after_eval" else reference["best_epochs"][-1]
    killed = run_command(train_command(tiny_dataset, result), env={"RESNET3D_KILL_AT": f"{point}:{epoch}"})
    assert killed.returncode == -signal.SIGKILL
    resumed = run_command(train_command(tiny_dataset, result, "--resume=auto"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_run(reference["path"], result)
    log = (result / "train_synthetic.log").read_text()
    assert log.count("=== ") == 2 and "epoch: 1 step: 1," in log  # appended, not truncated
    if epoch > 1:  # a checkpoint to resume from was written: the resume is marked
        assert f"resumed from {result / 'resnet3d-synthetic-'}{epoch - 1}_3.ckpt" in log


@pytest.mark.slow
def test_sigterm_saves_the_position_and_resumes_bit_identically(tiny_dataset, reference, tmp_path):
    result = tmp_path / "run"
    proc = subprocess.Popen(train_command(tiny_dataset, result), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=REPO_ROOT)
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
    resumed = run_command(train_command(tiny_dataset, result, "--resume=auto"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout
    assert_same_run(reference["path"], result)


def _from_a_terminal():
    # what a terminal gives a command: SIGINT at its default disposition (a test runner started in the
    # background by a script may have it ignored, and the child would inherit that)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.parametrize("to_group", [False, True], ids=["to-the-process", "to-its-process-group"])
def test_ctrl_c_reads_sigint_exits_130_and_resumes_bit_identically(tiny_dataset, reference, tmp_path, to_group):
    """SIGINT (kill -INT, or Ctrl-C: the terminal signals the whole process group) is reported as SIGINT,
    not as the SIGTERM MindSpore's graph runtime turns it into."""
    result = tmp_path / "run"
    proc = subprocess.Popen(train_command(tiny_dataset, result), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=REPO_ROOT, start_new_session=True, preexec_fn=_from_a_terminal)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("epoch: 2 step: 1,"):
            if to_group:
                os.killpg(proc.pid, signal.SIGINT)
            else:
                os.kill(proc.pid, signal.SIGINT)
            break
    out = "".join(lines) + proc.stdout.read()
    assert proc.wait(timeout=300) == 128 + signal.SIGINT, out[-3000:]
    assert "SIGINT: finishing the current step, then saving" in out and "SIGTERM" not in out, out[-2000:]
    stop = [ln for ln in out.splitlines() if ln.startswith("stopped by SIGINT at epoch 2 step ")]
    assert stop and "resume with --resume=auto" in stop[0], out[-2000:]
    resumed = run_command(train_command(tiny_dataset, result, "--resume=auto"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_run(reference["path"], result)


@pytest.mark.slow
def test_resume_refuses_changed_hyper_parameters_and_extends_n_epochs(tiny_dataset, reference, tmp_path):
    result = tmp_path / "run"
    shutil.copytree(reference["path"], result)
    (result / ".lock").unlink(missing_ok=True)
    changed = run_command(train_command(tiny_dataset, result, "--resume=auto", "--lr_max=0.5"))
    assert changed.returncode == 2
    err = changed.stderr.strip().splitlines()[-1]
    assert err.startswith("error: --resume: the config differs") and "lr_max 0.05 -> 0.5" in err
    assert "--resume_allow=[lr_max]" in err
    longer = run_command(train_command(tiny_dataset, result, "--resume=auto", "--n_epochs=4"))
    assert longer.returncode == 0, longer.stderr[-2000:]
    assert "n_epochs changed (3 -> 4): the learning-rate schedule is recomputed" in longer.stdout
    assert "epoch: 4 step: 3, loss is" in longer.stdout and (result / "resnet3d-synthetic-4_3.ckpt").is_file()
    fresh = run_command(train_command(tiny_dataset, result))
    assert fresh.returncode == 2
    assert "already holds training checkpoints of another run" in fresh.stderr and "--resume=auto" in fresh.stderr


@pytest.mark.slow
def test_a_second_process_on_a_folder_in_use_refuses_at_once(tiny_dataset, tmp_path):
    result = tmp_path / "run"
    first = subprocess.Popen(train_command(tiny_dataset, result, "--n_epochs=50"), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT)
    try:
        for line in first.stdout:
            if line.startswith("epoch: 1 step: 1,"):
                break
        start = time.time()
        second = run_command(train_command(tiny_dataset, result, "--resume=auto"))
        assert second.returncode == 2 and time.time() - start < 60
        assert f"is in use by pid {first.pid}" in second.stderr, second.stderr[-2000:]
    finally:
        first.kill()  # kill -9: the lock must not outlive the process
        first.wait()
    after = run_command(train_command(tiny_dataset, result, "--resume=auto", "--n_epochs=1"))
    assert after.returncode == 0, after.stderr[-2000:]


@pytest.mark.slow
def test_divergence_stops_with_one_line_and_writes_no_checkpoint(tiny_dataset, tmp_path):
    result = tmp_path / "run"
    res = run_command(train_command(tiny_dataset, result, "--lr_max=1e8", "--warmup_epochs=0"))
    assert res.returncode == 2, res.stdout[-2000:]
    err = res.stderr.strip().splitlines()[-1]
    assert err.startswith("error: training diverged at epoch 1") and "NaN" in err and "--lr_max" in err
    assert not list(result.glob("*.ckpt"))
    res = run_command(train_command(tiny_dataset, tmp_path / "nan_loss", "--lr_max=1e30", "--warmup_epochs=0"))
    err = res.stderr.strip().splitlines()[-1]
    assert res.returncode == 2 and err.startswith("error: training diverged at epoch 1"), res.stderr[-2000:]
    assert not list((tmp_path / "nan_loss").glob("*.ckpt"))


@pytest.mark.slow
def test_a_full_disk_stops_training_with_one_line_and_no_partial_files(tiny_dataset, tmp_path, mount_tmpfs):
    """The disk fills while the run goes on (another process takes the rest of a small tmpfs once the first
    checkpoint is there): one error line, no temporary left. A disk too small from the start is refused before
    training (tests/integration/test_training_progress.py)."""
    target = mount_tmpfs("size=24m")
    proc = subprocess.Popen(train_command(tiny_dataset, target / "run", "--n_epochs=40"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    deadline = time.monotonic() + 300
    while not list((target / "run").glob("resnet3d-*.ckpt")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    with open(target / "filler", "wb") as f:  # the rest of the disk, taken at once
        os.posix_fallocate(f.fileno(), 0, shutil.disk_usage(target).free - 65536)  # 64 KiB: less than a checkpoint
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 2, stderr[-2000:]
    err = stderr.strip().splitlines()[-1]
    assert err.startswith("error: cannot write ") and "free space" in err, err
    assert not [p for p in (target / "run").iterdir() if ".tmp" in p.name]
