"""Data-parallel training with MindSpore's msrun, unmodified, on one host or several.

python -m src.launch.run_msrun DEVICE_NUM DATASET VIDEO ANNOTATION RESULT --pretrain_path=... [--key=value ...]
    (what scripts/run_distribute_train_msrun.sh runs); the cluster comes from NNODES, NODE_RANK,
    MASTER_ADDR, MASTER_PORT, CLUSTER_TIME_OUT; STOP_TIMEOUT as in the script.

msrun runs in a session of its own (its SIGINT handler would SIGKILL the workers) and starts each worker
in a session of its own: the launcher notes the workers among msrun's children while it runs, so that it
can still stop them after msrun is gone. msrun names a worker that failed only by its pid, on stderr: the
launcher reads those lines and names the rank and its log.
"""
import errno
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from src.launch.job import TrainJob
from src.launch.processes import (LaunchError, StopSignals, children, run_launcher, describe_exit, environ, kill,
                                  positive_int, session_leader, stop_gracefully, tail, wait_gone)

# msrun's message for a worker that ended with a non-zero code (mindspore/parallel/cluster/process_entity/_api.py)
WORKER_FAILED = re.compile(r"Worker process (\d+) exit with exception\. Error code: (-?\d+)\.")


@dataclass(frozen=True)
class Cluster:
    nnodes: int
    node_rank: int
    master_addr: str
    port: int
    cluster_time_out: int
    stop_timeout: int

    @classmethod
    def from_env(cls, env):
        nnodes = positive_int(env, "NNODES", 1, " (the number of hosts)")
        node_rank = env.get("NODE_RANK") or "0"
        if not re.fullmatch(r"0|[1-9][0-9]*", node_rank) or int(node_rank) >= nnodes:
            raise LaunchError(f"NODE_RANK '{node_rank}' is not a number from 0 to {nnodes - 1} (NNODES={nnodes}): "
                              f"give each host its own")
        master = env.get("MASTER_ADDR") or "127.0.0.1"
        master_ip = resolve(master)
        if int(node_rank) == 0 and not is_local_address(master_ip):
            raise LaunchError(f"MASTER_ADDR {master} is not an address of this host, but node 0 (NODE_RANK=0) runs "
                              f"msrun's scheduler there: set MASTER_ADDR to this host's address on every node")
        # one host: a random port, so that concurrent jobs do not collide; several: msrun's default, the same on all
        port = env.get("MASTER_PORT") or str(8118 + random.randrange(1000) if nnodes == 1 else 8118)
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise LaunchError(f"MASTER_PORT '{port}' is not a port number (1-65535)")
        time_out = positive_int(env, "CLUSTER_TIME_OUT", 600, " of seconds (how long to wait for all hosts)")
        stop_timeout = positive_int(env, "STOP_TIMEOUT", 120, " of seconds")
        return cls(nnodes, int(node_rank), master, int(port), time_out, stop_timeout)


def resolve(host: str) -> str:
    try:
        return socket.getaddrinfo(host, None)[0][4][0]
    except (socket.gaierror, UnicodeError):
        raise LaunchError(f"MASTER_ADDR '{host}' is not an address or a known host name: give node 0's address") \
            from None


def is_local_address(ip: str) -> bool:
    """Whether ``ip`` is an address of this host (of its network namespace): one can bind to it."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((ip, 0))
        except OSError as err:
            if err.errno == errno.EADDRNOTAVAIL:
                return False
            raise
    return True


def failed_workers(lines):
    """(pid, exit code) of each worker msrun reports as failed in ``lines``."""
    return [(int(m.group(1)), int(m.group(2))) for m in map(WORKER_FAILED.search, lines) if m]


class Msrun:
    """msrun and the workers it started on this host."""

    def __init__(self, command, log_dir: Path, env):
        self.log_dir = log_dir
        self.rank_of = {}  # worker pid -> global rank
        self.others = set()  # msrun's other children: the scheduler, log tails
        self.lines = []  # msrun's stderr, also on ours and in msrun.log
        self.proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, start_new_session=True)
        self._copier = threading.Thread(target=self._copy_stderr, daemon=True)
        self._copier.start()

    def _copy_stderr(self):
        with open(self.log_dir / "msrun.log", "wb") as log:
            for line in self.proc.stderr:
                sys.stderr.buffer.write(line)
                sys.stderr.flush()
                log.write(line)
                log.flush()
                self.lines.append(line.decode(errors="replace"))

    def note_workers(self):
        """Remember msrun's children: a worker runs in a session of its own (its data-loader children
        share its group) with MS_ROLE=MS_WORKER and its RANK_ID."""
        for pid in children(self.proc.pid):
            if pid in self.rank_of:
                continue
            env = environ(pid)  # msrun's own until the child has exec'd: asked again next time
            if env.get("MS_ROLE") == "MS_WORKER" and session_leader(pid) and "RANK_ID" in env:
                self.rank_of[pid] = int(env["RANK_ID"])
                self.others.discard(pid)
            else:
                self.others.add(pid)

    def wait(self, stop):
        """Until msrun ends (its exit code) or a stop signal comes (None)."""
        while stop.signum is None:
            self.note_workers()
            if self.proc.poll() is not None:
                return self.proc.returncode
            time.sleep(0.5)
        return None

    def stop(self, timeout, quiet=False):
        """msrun first (once one rank exits it SIGKILLs the others, which may still be saving), then
        SIGTERM to the workers, then the rest of msrun's process group."""
        if self.proc.poll() is None:
            self.note_workers()
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait()
        stop_gracefully(list(self.rank_of), timeout, "workers")
        if not wait_gone(self.others, 0):  # the scheduler, msrun's log tails: in msrun's process group
            kill(self.proc.pid, signal.SIGTERM, group=True)
            if not wait_gone(self.others, 5):
                kill(self.proc.pid, signal.SIGKILL, group=True)
        self._copier.join(timeout=5)

    def kill_workers(self):
        for pid in self.rank_of:
            kill(pid, signal.SIGKILL, group=True)

    def report_failures(self):
        """Name each worker msrun reports dead: its rank, how it ended, the end of its log."""
        for pid, code in failed_workers(self.lines):
            rank = self.rank_of.get(pid)
            if rank is None:
                print(f"error: a worker (pid {pid}) {describe_exit(code)}; worker logs: {self.log_dir}",
                      file=sys.stderr)
                continue
            log = self.log_dir / f"worker_{rank}.log"
            for line in tail(log):
                print(f"rank {rank} | {line}", file=sys.stderr)
            print(f"error: rank {rank} (pid {pid}) {describe_exit(code)}; its log: {log}", file=sys.stderr)


def _launch(argv, env):
    device_num, *rest = argv
    device_num = int(device_num)
    job = TrainJob.from_args(rest)
    cluster = Cluster.from_env(env)
    worker_num, first_rank = device_num * cluster.nnodes, cluster.node_rank * device_num
    log_dir = job.result_path / "msrun_logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"training {job.dataset} on {device_num} worker(s) of {worker_num} (node {cluster.node_rank} of "
          f"{cluster.nnodes}, ranks {first_rank}-{first_rank + device_num - 1}; msrun master "
          f"{cluster.master_addr}:{cluster.port}); logs: {log_dir}", flush=True)
    command = [sys.executable, "-m", "mindspore.parallel.cluster.run", f"--worker_num={worker_num}",
               f"--local_worker_num={device_num}", f"--node_rank={cluster.node_rank}",
               f"--master_addr={cluster.master_addr}", f"--master_port={cluster.port}",
               f"--cluster_time_out={cluster.cluster_time_out}", "--join=True", f"--log_dir={log_dir}",
               *job.train_args("--run_distribute=True")]
    # msrun starts the workers with the python on PATH: ours first
    env = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
    msrun = None

    def kill_now(name):
        print(f"launcher: {name} again: killing the workers now", file=sys.stderr, flush=True)
        if msrun is not None:
            msrun.kill_workers()

    with StopSignals(kill_now) as stop:
        msrun = Msrun(command, log_dir, env)
        status = msrun.wait(stop)
        if status is None:
            print(f"launcher: {stop.name} received: SIGTERM to the workers of this host, waiting up to "
                  f"{cluster.stop_timeout}s", file=sys.stderr, flush=True)
            msrun.stop(cluster.stop_timeout)
            print(f"launcher: stopped; worker logs in {log_dir}", file=sys.stderr)
            return stop.exit_code
        msrun.stop(cluster.stop_timeout)  # nothing is left after a normal end; after a failure, msrun's leftovers
    if status == 0:
        print("\n".join(tail(log_dir / f"worker_{first_rank}.log")))
    else:
        msrun.report_failures()
    return status


def main(argv=None, env=None):
    return run_launcher(_launch, argv, env)


if __name__ == "__main__":
    sys.exit(main())
