"""The distributed launchers: msrun on one or two "hosts" (two launchers on this machine), signals that
stop every worker, a dead rank named with its log, and the rank-table launcher's multi-server table."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.tiny import tiny_args

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
MSRUN = "run_distribute_train_msrun.sh"
RANK_TABLE = "run_distribute_train.sh"
# the tiny model; 24 videos / 2 ranks / batch 4: 3 steps per epoch
TRAIN = ["--device_target=CPU", "--dataset=synthetic", *tiny_args(eval_batch_size=8), "--batch_size=4",
         "--start_ft=conv1"]
FINAL = "resnet3d-synthetic-4_3.ckpt"  # the last checkpoint of a 4-epoch run
CLUSTER_ENV = ("NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "SERVER_ID", "DRY_RUN", "STOP_TIMEOUT")


def script_env(**env):
    base = {k: v for k, v in os.environ.items() if k not in CLUSTER_ENV}
    return dict(base, PYTHON=sys.executable, **{k: str(v) for k, v in env.items()})


def run(script, *args, **env):
    return subprocess.run(["bash", str(SCRIPTS / script), *map(str, args)], capture_output=True, text=True,
                          env=script_env(**env), cwd=ROOT, timeout=600)


def _as_from_a_terminal():
    # A shell started in the background by a non-interactive one (a CI runner, `make test &`) inherits SIGINT
    # ignored, and bash cannot trap a signal that was ignored at its start: give the launcher the default
    # disposition a terminal gives it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(script, *args, **env):
    """The launcher in a session of its own (as from a terminal): its pid is its process group."""
    return subprocess.Popen(["bash", str(SCRIPTS / script), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=script_env(**env), cwd=ROOT,
                            start_new_session=True, preexec_fn=_as_from_a_terminal)


def msrun_args(dataset, result, *extra):
    return ["ucf101", dataset["video_path"], dataset["annotation_path"], result, "none", *TRAIN, *extra]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read(path):
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def job_processes(marker):
    """pids of the live processes (zombies excluded) whose command line mentions ``marker``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and str(marker).encode() in _read(proc / "cmdline"):
            stat = _read(proc / "stat").decode(errors="replace")
            if stat and stat.rsplit(")", 1)[-1].split()[0] != "Z":
                pids.append(int(proc.name))
    return pids


def train_processes(marker):
    """pids of the live train.py processes (the ranks) of the job writing to ``marker``."""
    return [pid for pid in job_processes(marker) if b"/train.py\0" in _read(f"/proc/{pid}/cmdline")]


def worker_pid(marker, rank):
    """pid of msrun's worker of global rank ``rank`` in the job writing to ``marker``."""
    for pid in job_processes(marker):
        env = _read(f"/proc/{pid}/environ").split(b"\0")
        if b"MS_ROLE=MS_WORKER" in env and f"RANK_ID={rank}".encode() in env and os.getpgid(pid) == pid:
            return pid
    return None


def wait_for(predicate, timeout, what, poll=0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def checkpoints(result):
    return {p.name: p.stat().st_mtime_ns for p in Path(result).glob("*.ckpt")}


def max_difference(ckpt_a, ckpt_b):
    """(largest absolute difference over all tensors, number of tensors); the names must match."""
    import mindspore as ms

    a, b = (ms.load_checkpoint(str(p)) for p in (ckpt_a, ckpt_b))
    assert sorted(a) == sorted(b)
    tensors = [k for k in a if hasattr(a[k], "asnumpy")]
    assert all(a[k] == b[k] for k in a if k not in tensors)  # non-tensor entries (metadata) are equal
    return max(float(np.abs(a[k].asnumpy().astype(np.float64) - b[k].asnumpy()).max()) for k in tensors), len(tensors)


def assert_stops_for_good(proc, result, expected_code):
    """The launcher ends with ``expected_code``; a few seconds later nothing of the job runs and no
    checkpoint appears or changes."""
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == expected_code, (out + err)[-3000:]
    wait_for(lambda: not job_processes(result), 5, f"every process of the job to end: {job_processes(result)}")
    before = checkpoints(result)
    time.sleep(3)
    assert checkpoints(result) == before and not job_processes(result)
    return err


# --- msrun launcher: environment checks (before anything starts) ---

@pytest.mark.parametrize("env, message", [
    ({"NNODES": "0"}, "NNODES '0' is not a positive number"),
    ({"NNODES": "two"}, "NNODES 'two' is not a positive number"),
    ({"NNODES": "2", "NODE_RANK": "2"}, "NODE_RANK '2' is not a number from 0 to 1 (NNODES=2)"),
    ({"NODE_RANK": "-1"}, "NODE_RANK '-1' is not a number from 0 to 0"),
    ({"MASTER_ADDR": "no-such-host.invalid"}, "MASTER_ADDR 'no-such-host.invalid' is not an address or a known host"),
    ({"MASTER_ADDR": "192.0.2.77"}, "MASTER_ADDR 192.0.2.77 is not an address of this host, but node 0"),
    ({"MASTER_PORT": "70000"}, "MASTER_PORT '70000' is not a port number"),
    ({"MASTER_PORT": "http"}, "MASTER_PORT 'http' is not a port number"),
    ({"CLUSTER_TIME_OUT": "0"}, "CLUSTER_TIME_OUT '0' is not a positive number of seconds"),
    ({"STOP_TIMEOUT": "soon"}, "STOP_TIMEOUT 'soon' is not a positive number of seconds"),
])
def test_msrun_cluster_environment_checks(tiny_dataset, tmp_path, env, message):
    res = run(MSRUN, 2, *msrun_args(tiny_dataset, tmp_path / "r"), **env)
    errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    assert res.returncode == 1 and len(errors) == 1 and message in errors[0], res.stderr
    assert not (tmp_path / "r").exists()


# --- msrun launcher: real jobs of 2 CPU workers ---

@pytest.fixture(scope="module")
def one_host(tiny_dataset, tmp_path_factory):
    """One launcher, 2 workers, 4 epochs: the reference run."""
    result = tmp_path_factory.mktemp("one_host") / "result"
    res = run(MSRUN, 2, *msrun_args(tiny_dataset, result, "--n_epochs=4"))
    return result, res


@pytest.mark.slow
def test_two_process_data_parallel_with_msrun_on_cpu(one_host):
    result, res = one_host
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert (result / FINAL).is_file()
    for rank in (0, 1):
        log = (result / "msrun_logs" / f"worker_{rank}.log").read_text()
        assert "effective batch 8 (4 x 2 rank(s) x 1 accumulation step(s))" in log and "Traceback" not in log
    assert "epoch: 4 step: 3, loss is" in (result / "msrun_logs" / "worker_0.log").read_text()
    assert "epoch: 4 step: 3, loss is" not in (result / "msrun_logs" / "worker_1.log").read_text()  # rank 0 logs
    assert not job_processes(result)


@pytest.mark.slow
def test_two_hosts_end_bit_identical_to_one_host(one_host, tiny_dataset, tmp_path):
    """NNODES=2 launchers with one worker each (both on this machine, as two hosts) train the same
    weights as one launcher with two workers."""
    reference, res = one_host
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    port = free_port()
    hosts = [start(MSRUN, 1, *msrun_args(tiny_dataset, tmp_path / f"host{rank}", "--n_epochs=4"), NNODES=2,
                   NODE_RANK=rank, MASTER_ADDR="127.0.0.1", MASTER_PORT=port) for rank in (0, 1)]
    outputs = [host.communicate(timeout=300) for host in hosts]
    for host, (out, err) in zip(hosts, outputs):
        assert host.returncode == 0, (out + err)[-3000:]
    assert "node 1 of 2, ranks 1-1" in outputs[1][0]
    assert (tmp_path / "host1" / "msrun_logs" / "worker_1.log").is_file()
    assert not list((tmp_path / "host1").glob("*.ckpt"))  # only global rank 0 writes checkpoints
    diff, count = max_difference(tmp_path / "host0" / FINAL, reference / FINAL)
    print(f"2 hosts x 1 worker vs 1 host x 2 workers: {count} tensors, max weight difference {diff}")
    assert diff == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("sig, to_group", [(signal.SIGTERM, True), (signal.SIGINT, False)],
                         ids=["SIGTERM-to-group", "SIGINT-to-launcher"])
def test_signal_stops_every_worker(tiny_dataset, tmp_path, sig, to_group):
    """msrun's workers run in sessions of their own: the launcher must reach them (with the signal sent
    to its process group, or to it alone), and nothing may train or write checkpoints afterwards."""
    result = tmp_path / "result"
    proc = start(MSRUN, 2, *msrun_args(tiny_dataset, result, "--n_epochs=500"))
    wait_for(lambda: checkpoints(result) or proc.poll() is not None, 120, "the first checkpoint")
    workers = [worker_pid(result, rank) for rank in (0, 1)]
    assert proc.poll() is None and None not in workers
    if to_group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    err = assert_stops_for_good(proc, result, 128 + sig)
    assert f"launcher: {sig.name} received" in err


@pytest.mark.slow
def test_resume_after_sigterm_ends_bit_identical(one_host, tiny_dataset, tmp_path):
    """A job stopped by SIGTERM and resumed with --resume=auto through the launcher ends with the weights
    of the uninterrupted run."""
    reference, res = one_host
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    result = tmp_path / "result"
    proc = start(MSRUN, 2, *msrun_args(tiny_dataset, result, "--n_epochs=4"))
    wait_for(lambda: checkpoints(result) or proc.poll() is not None, 120, "the first checkpoint", poll=0.1)
    os.killpg(proc.pid, signal.SIGTERM)
    assert_stops_for_good(proc, result, 143)
    assert not (result / FINAL).exists(), "the job ended before the signal: nothing was interrupted"
    res = run(MSRUN, 2, *msrun_args(tiny_dataset, result, "--n_epochs=4", "--resume=auto"))
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    diff, count = max_difference(result / FINAL, reference / FINAL)
    print(f"stopped by SIGTERM, resumed vs uninterrupted: {count} tensors, max weight difference {diff}")
    assert diff == 0.0


@pytest.mark.slow
def test_dead_rank_ends_the_job_and_is_named(tiny_dataset, tmp_path):
    result = tmp_path / "result"
    proc = start(MSRUN, 2, *msrun_args(tiny_dataset, result, "--n_epochs=500"))
    wait_for(lambda: checkpoints(result) or proc.poll() is not None, 120, "the first checkpoint")
    victim = worker_pid(result, 1)
    assert proc.poll() is None and victim is not None
    t0 = time.time()
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    print(f"dead rank: launcher ended {time.time() - t0:.1f} s after kill -9")
    assert proc.returncode == 1, (out + err)[-3000:]
    log = result / "msrun_logs" / "worker_1.log"
    assert f"error: rank 1 (pid {victim}) was killed by SIGKILL; its log: {log}" in err.splitlines()
    assert "exit with exception" in err  # msrun's own message is kept
    assert not job_processes(result)


# --- rank-table launcher: a table of two servers ---

def write_table(path, servers):
    """servers: {server_id: [rank_id per device]} -> an HCCL rank table (version 1.0 layout)."""
    server_list = [{"server_id": sid, "device": [{"device_id": str(i), "device_ip": f"192.168.{n}.{i + 1}",
                                                  "rank_id": str(r)} for i, r in enumerate(ranks)],
                    "host_nic_ip": "reserve"} for n, (sid, ranks) in enumerate(servers.items())]
    table = {"version": "1.0", "server_count": str(len(servers)), "server_list": server_list, "status": "completed"}
    path.write_text(json.dumps(table))
    return path


@pytest.fixture
def table(tmp_path):
    return write_table(tmp_path / "hccl_2s.json", {"10.0.0.1": [0, 1, 2, 3], "10.0.0.2": [4, 5, 6, 7]})


def rank_table_args(table, dataset, result, *extra):
    return [table, "ucf101", dataset["video_path"], dataset["annotation_path"], result, "none", *extra]


@pytest.mark.parametrize("device_num, env, message", [
    (4, {}, "no server_id of RANK_TABLE_FILE {table} (10.0.0.1, 10.0.0.2) is an address of this host"),
    (8, {"SERVER_ID": "10.0.0.2"}, "DEVICE_NUM 8 does not match the 4 device(s) of server 10.0.0.2 in RANK_TABLE_FILE"),
    (4, {"SERVER_ID": "10.0.0.3"},
     "SERVER_ID 10.0.0.3 is not a server_id of RANK_TABLE_FILE {table} (10.0.0.1, 10.0.0.2)"),
    (4, {"SERVER_ID": "10.0.0.2", "DRY_RUN": "yes"}, "DRY_RUN 'yes' is not 0 or 1"),
])
def test_rank_table_checks(table, tiny_dataset, tmp_path, device_num, env, message):
    res = run(RANK_TABLE, device_num, *rank_table_args(table, tiny_dataset, tmp_path / "r"), **env)
    errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    assert res.returncode == 1 and len(errors) == 1 and message.format(table=table) in errors[0], res.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("servers, message", [
    ('{"server_list": [', "is not an HCCL rank table"),
    ('{"server_count": "2", "server_list": [{"server_id": "10.0.0.1", "device": [{"device_id": "0"}]}]}',
     "is not an HCCL rank table"),
    ({"10.0.0.1": [0, 1], "10.0.0.2": [1, 2]}, "the rank_ids are not 0 to 3, each once"),
])
def test_rank_table_file_checks(tiny_dataset, tmp_path, servers, message):
    path = tmp_path / "t.json"
    if isinstance(servers, str):
        path.write_text(servers)
    else:
        write_table(path, servers)
    res = run(RANK_TABLE, 2, *rank_table_args(path, tiny_dataset, tmp_path / "r"), SERVER_ID="10.0.0.1")
    assert res.returncode == 1 and res.stderr.startswith("error: ") and message in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1


def test_rank_table_dry_run_gives_global_rank_ids(table, tiny_dataset, tmp_path):
    result = tmp_path / "r"
    res = run(RANK_TABLE, 4, *rank_table_args(table, tiny_dataset, result, "--n_epochs=3"), SERVER_ID="10.0.0.2",
              DRY_RUN=1)
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines() if line.startswith("rank ")]
    assert len(lines) == 4
    for device, line in enumerate(lines):
        rank = 4 + device
        assert line.startswith(f"rank {rank} (device {device}): RANK_TABLE_FILE={table} RANK_SIZE=8 "
                               f"RANK_ID={rank} DEVICE_ID={device} ")
        assert f"--device_id={device} " in line and "--run_distribute=True" in line and "--n_epochs=3" in line
        assert line.endswith(f"> {result}/rank_{rank}/train.log 2>&1")
    assert not result.exists()  # a dry run starts and writes nothing


def test_rank_table_finds_this_host_by_its_address(tiny_dataset, tmp_path):
    table = write_table(tmp_path / "t.json", {"10.0.0.1": [0, 1], "127.0.0.1": [2, 3]})
    res = run(RANK_TABLE, 2, *rank_table_args(table, tiny_dataset, tmp_path / "r"), DRY_RUN=1)
    assert res.returncode == 0, res.stderr
    assert "server 127.0.0.1: 2 device(s), ranks of 4" in res.stdout
    assert "RANK_ID=2 DEVICE_ID=0 " in res.stdout and "RANK_ID=3 DEVICE_ID=1 " in res.stdout


@pytest.mark.slow
def test_rank_table_sigterm_stops_its_ranks(tiny_dataset, tmp_path):
    """The real launch path with one real CPU process (standalone: HCCL needs Ascend): SIGTERM to the
    launcher's group reaches the rank (through the launcher), which had the table's global RANK_ID."""
    table = write_table(tmp_path / "t.json", {"10.0.0.1": [0], "10.0.0.2": [1]})
    result = tmp_path / "result"
    proc = start(RANK_TABLE, 1, *rank_table_args(table, tiny_dataset, result, *TRAIN, "--n_epochs=500",
                                                 "--run_distribute=False"), SERVER_ID="10.0.0.2")
    wait_for(lambda: checkpoints(result) or proc.poll() is not None, 120, "the first checkpoint")
    ranks = train_processes(result)
    assert proc.poll() is None and len(ranks) == 1
    rank = ranks[0]
    env = _read(f"/proc/{rank}/environ").split(b"\0")
    assert b"RANK_ID=1" in env and b"RANK_SIZE=2" in env and b"DEVICE_ID=0" in env
    assert os.getsid(rank) == rank  # not in the launcher's group: reached through the launcher only
    os.killpg(proc.pid, signal.SIGTERM)
    err = assert_stops_for_good(proc, result, 143)
    assert "launcher: SIGTERM received" in err


def test_rank_table_dead_rank_is_named(tiny_dataset, tmp_path):
    table = write_table(tmp_path / "t.json", {"10.0.0.1": [0], "10.0.0.2": [1]})
    result = tmp_path / "result"
    proc = start(RANK_TABLE, 1, *rank_table_args(table, tiny_dataset, result, *TRAIN), SERVER_ID="10.0.0.2")
    wait_for(lambda: train_processes(result) or proc.poll() is not None, 30, "the rank")
    victim = train_processes(result)[0]
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, out + err
    assert err.splitlines()[-1] == (f"error: rank 1 (pid {victim}) was killed by SIGKILL; its log: "
                                    f"{result}/rank_1/train.log")
