"""Data-parallel training with an HCCL rank table: one train.py per device of this host, each in a
session of its own with RANK_SIZE / RANK_ID / DEVICE_ID set; the first rank to fail ends the job.

python -m src.launch.run_rank_table DEVICE_NUM RANK_TABLE_FILE DATASET VIDEO ANNOTATION RESULT
    --pretrain_path=... [--key=value ...]      (what scripts/run_distribute_train.sh runs)
Environment: SERVER_ID, DRY_RUN=1, STOP_TIMEOUT (see the script).
"""
import shlex
import signal
import subprocess
import sys
import time

from src.launch.job import TrainJob
from src.launch.processes import (LaunchError, StopSignals, describe_exit, kill, positive_int, run_launcher,
                                  stop_gracefully, tail)
from src.launch.rank_table import host_addresses, read_rank_table


def _launch(argv, env):
    device_num, table_path, *rest = argv
    job = TrainJob.from_args(rest)
    stop_timeout = positive_int(env, "STOP_TIMEOUT", 120, " of seconds")
    dry_run = env.get("DRY_RUN", "0")
    if dry_run not in ("0", "1"):
        raise LaunchError(f"DRY_RUN '{dry_run}' is not 0 or 1")
    server_id = env.get("SERVER_ID", "")
    host = read_rank_table(table_path, int(device_num), server_id, set() if server_id else host_addresses())
    common_env = {"RANK_TABLE_FILE": table_path, "RANK_SIZE": str(host.rank_size)}
    print(f"server {host.server_id}: {device_num} device(s), ranks of {host.rank_size} from {table_path}", flush=True)

    def log(rank):
        return job.result_path / f"rank_{rank}" / "train.log"

    if dry_run == "1":
        for device, rank in host.devices:
            command = " ".join(map(shlex.quote, job.command("--run_distribute=True", f"--device_id={device}")))
            print(f"rank {rank} (device {device}): RANK_TABLE_FILE={table_path} RANK_SIZE={host.rank_size} "
                  f"RANK_ID={rank} DEVICE_ID={device} {command} > {log(rank)} 2>&1")
        return 0

    ranks = {}  # pid -> (rank, Popen)

    def kill_now(name):
        print(f"launcher: {name} again: killing the ranks now", file=sys.stderr, flush=True)
        for pid in ranks:
            kill(pid, signal.SIGKILL, group=True)

    with StopSignals(kill_now) as stop:
        for device, rank in host.devices:
            if stop.signum:
                break
            log(rank).parent.mkdir(parents=True, exist_ok=True)
            print(f"starting rank {rank} (device {device}); log: {log(rank)}", flush=True)
            with open(log(rank), "wb") as out:  # a session of its own: Ctrl-C reaches the rank through us, once
                proc = subprocess.Popen(job.command("--run_distribute=True", f"--device_id={device}"),
                                        env={**env, **common_env, "DEVICE_ID": str(device), "RANK_ID": str(rank)},
                                        stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            ranks[proc.pid] = (rank, proc)
        failed = _first_failure({pid: proc for pid, (_, proc) in ranks.items()}, stop)
        if stop.signum is not None:
            print(f"launcher: {stop.name} received: SIGTERM to every rank, waiting up to {stop_timeout}s",
                  file=sys.stderr, flush=True)
            stop_gracefully(list(ranks), stop_timeout, "ranks")
            print(f"launcher: stopped; rank logs in {job.result_path}/rank_<i>/train.log", file=sys.stderr)
            return stop.exit_code
        if failed is not None:
            rank, proc = ranks[failed]
            for line in tail(log(rank)):
                print(f"rank {rank} | {line}", file=sys.stderr)
            print(f"error: rank {rank} (pid {failed}) {describe_exit(proc.returncode)}; its log: {log(rank)}",
                  file=sys.stderr, flush=True)
            if any(p.poll() is None for _, p in ranks.values()):
                print("launcher: stopping the other ranks", file=sys.stderr, flush=True)
            stop_gracefully(list(ranks), stop_timeout, "ranks")
            return 1
    print("\n".join(tail(log(host.devices[0][1]))))
    return 0


def _first_failure(procs, stop):
    """Wait until every rank has ended (None), one has failed (its pid: the others would wait for it in
    every collective), or a stop signal came (None, ``stop.signum`` set)."""
    while stop.signum is None:
        codes = {pid: proc.poll() for pid, proc in procs.items()}
        failed = next((pid for pid, code in codes.items() if code), None)
        if failed is not None or None not in codes.values():
            return failed
        time.sleep(0.2)
    return None


def main(argv=None, env=None):
    return run_launcher(_launch, argv, env)


if __name__ == "__main__":
    sys.exit(main())
