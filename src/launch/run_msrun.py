"""scripts/run_distribute_train_msrun.sh's job with MindSpore's msrun as it is, on one host or several:
``launch([DEVICE_NUM, DATASET, RESULT_PATH, train.py's arguments...], environment)``.

msrun (``--join=False``, its default) starts the scheduler and this host's workers, each worker in a session of its
own writing ``--log_dir``/worker_<rank>.log, and exits. The launcher is their subreaper: they become its children,
known by the MS_ROLE and RANK_ID msrun gave them, so that it has each one's exit status and can stop them all.
"""
import contextlib
import ctypes
import os
import subprocess
import sys
from pathlib import Path

from src.cluster import Cluster
from src.errors import UserError
from src.launch.processes import Ranks, describe_exit, train_command


def adopt(ranks: Ranks, log_dir: Path) -> int:
    """msrun's processes, our children once it has exited; returns the number of workers."""
    workers, tasks = 0, Path("/proc/self/task").iterdir()
    for pid in [int(pid) for task in tasks for pid in (task / "children").read_text().split()]:
        environ = ""
        with contextlib.suppress(OSError):
            environ = Path(f"/proc/{pid}/environ").read_text(errors="replace")
        env = dict(item.partition("=")[::2] for item in environ.split("\0"))
        if env.get("MS_ROLE") == "MS_WORKER" and env.get("RANK_ID", "").isdigit():
            ranks.add(pid, f"rank {env['RANK_ID']}", log_dir / f"worker_{env['RANK_ID']}.log")
            workers += 1
        elif env.get("MS_ROLE") == "MS_SCHED":
            ranks.add(pid, "msrun's scheduler", log_dir / "scheduler.log", helper=True)
    return workers


def launch(argv, env):
    device_num, dataset, result, *train_args = argv
    device_num, cluster = int(device_num), Cluster.from_env(env)
    worker_num, first_rank = device_num * cluster.nnodes, cluster.node_rank * device_num
    log_dir = Path(result) / "msrun_logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"training {dataset} on {device_num} worker(s) of {worker_num} (node {cluster.node_rank} of "
          f"{cluster.nnodes}, ranks {first_rank}-{first_rank + device_num - 1}; msrun master "
          f"{cluster.master_addr}:{cluster.port}); logs: {log_dir}", flush=True)
    command = [sys.executable, "-m", "mindspore.parallel.cluster.run", f"--worker_num={worker_num}",
               f"--local_worker_num={device_num}", f"--node_rank={cluster.node_rank}",
               f"--master_addr={cluster.master_addr}", f"--master_port={cluster.port}",
               f"--cluster_time_out={cluster.cluster_time_out}", "--join=False", f"--log_dir={log_dir}",
               *train_command(train_args, "--run_distribute=True")[1:]]
    # msrun starts the workers with the python on PATH: ours first
    env = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
    if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0):  # PR_SET_CHILD_SUBREAPER: msrun's orphans are ours
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
    with Ranks() as ranks:
        code = subprocess.run(command, env=env, start_new_session=True).returncode
        if ((workers := adopt(ranks, log_dir)) != device_num or code) and ranks.signum is None:
            ranks.stop(cluster.stop_timeout)
            raise UserError(f"msrun {describe_exit(code)} having started {workers} of {device_num} worker(s) here; "
                            f"logs: {log_dir}")
        return ranks.supervise(cluster.stop_timeout, f"{log_dir}/worker_<rank>.log")
