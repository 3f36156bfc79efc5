"""The distributed launchers driven as from a terminal: run or start them, find their processes in /proc,
wait for them, compare what they wrote. Cluster variables of the calling shell are left out."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np

from src.config import REPO_ROOT
from tests.helpers.scripts import SCRIPTS, script_env as _with_python
from tests.helpers.tiny import tiny_options

MSRUN = "run_distribute_train_msrun.sh"
RANK_TABLE = "run_distribute_train.sh"
# the tiny model; 24 videos / 2 ranks / batch 4: 3 steps per epoch
LAUNCH_TRAIN_OPTIONS = ["--device_target=CPU", "--dataset=synthetic", *tiny_options(eval_batch_size=8),
                        "--batch_size=4", "--start_ft=conv1"]
FINAL = "resnet3d-synthetic-4_3.ckpt"  # the last checkpoint of a 4-epoch run
CLUSTER_ENV = ("NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "SERVER_ID", "DRY_RUN", "STOP_TIMEOUT")


def launcher_env(**env):
    """script_env without the cluster variables of the calling shell."""
    return {k: v for k, v in _with_python(**env).items() if k not in CLUSTER_ENV or k in env}


def run_launcher(script, *args, **env):
    return subprocess.run(["bash", str(SCRIPTS / script), *map(str, args)], capture_output=True, text=True,
                          env=launcher_env(**env), cwd=REPO_ROOT, timeout=600)


def _as_from_a_terminal():
    # A shell started in the background by a non-interactive one (a CI runner, `make test &`) inherits SIGINT
    # ignored, and bash cannot trap a signal that was ignored at its start: give the launcher the default
    # disposition a terminal gives it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_launcher(script, *args, netns=None, **env):
    """The launcher in a session of its own (as from a terminal): its pid is its process group. With
    ``netns``, in that network namespace (`ip netns exec` execs it: same pid)."""
    where = ["ip", "netns", "exec", netns] if netns else []
    return subprocess.Popen([*where, "bash", str(SCRIPTS / script), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=launcher_env(**env), cwd=REPO_ROOT,
                            start_new_session=True, preexec_fn=_as_from_a_terminal)


def msrun_args(dataset, result, *extra):
    return ["ucf101", dataset["video_path"], dataset["annotation_path"], result, "none", *LAUNCH_TRAIN_OPTIONS,
            *extra]


def read_or_empty(path):
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def job_processes(marker):
    """pids of the live processes (zombies excluded) whose command line mentions ``marker``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and str(marker).encode() in read_or_empty(proc / "cmdline"):
            stat = read_or_empty(proc / "stat").decode(errors="replace")
            if stat and stat.rsplit(")", 1)[-1].split()[0] != "Z":
                pids.append(int(proc.name))
    return pids


def train_processes(marker):
    """pids of the live train.py processes (the ranks) of the job writing to ``marker``."""
    return [pid for pid in job_processes(marker) if b"/train.py\0" in read_or_empty(f"/proc/{pid}/cmdline")]


def worker_pid(marker, rank):
    """pid of msrun's worker of global rank ``rank`` in the job writing to ``marker``."""
    for pid in job_processes(marker):
        env = read_or_empty(f"/proc/{pid}/environ").split(b"\0")
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


def checkpoint_mtimes(result):
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
    before = checkpoint_mtimes(result)
    time.sleep(3)
    assert checkpoint_mtimes(result) == before and not job_processes(result)
    return err


def write_table(path, servers):
    """servers: {server_id: [rank_id per device]} -> an HCCL rank table (version 1.0 layout)."""
    server_list = [{"server_id": sid, "device": [{"device_id": str(i), "device_ip": f"192.168.{n}.{i + 1}",
                                                  "rank_id": str(r)} for i, r in enumerate(ranks)],
                    "host_nic_ip": "reserve"} for n, (sid, ranks) in enumerate(servers.items())]
    table = {"version": "1.0", "server_count": str(len(servers)), "server_list": server_list, "status": "completed"}
    path.write_text(json.dumps(table))
    return path


def rank_table_args(table, dataset, result, *extra):
    return [table, "ucf101", dataset["video_path"], dataset["annotation_path"], result, "none", *extra]
