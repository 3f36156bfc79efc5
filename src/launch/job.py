"""The training job both launchers start: train.py with the seed scripts' fixed arguments, and its processes on
this host, which the launcher reaps (as their parent, or their subreaper once msrun has exited) and stops."""
import contextlib
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from src.errors import UserError
from src.launch.processes import failure

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class TrainJob:
    """DATASET VIDEO_PATH ANNOTATION_PATH RESULT_PATH --pretrain_path=... [--key=value ...], as the scripts pass
    them (checked and absolute)."""
    dataset: str
    result_path: Path
    args: tuple  # train.py's arguments after the config, the dataset and the launcher's options

    @classmethod
    def from_args(cls, args):
        dataset, video, annotation, result, pretrain, *extra = args
        return cls(dataset, Path(result), (f"--video_path={video}", f"--annotation_path={annotation}",
                                           f"--result_path={result}", pretrain, *extra))

    def command(self, *options) -> list:
        config = ROOT / f"{self.dataset}_config.yaml"  # the dataset's own, else the documented template
        return [sys.executable, str(ROOT / "train.py"),
                f"--config_path={config if config.is_file() else ROOT / 'ucf101_config.yaml'}",
                f"--dataset={self.dataset}", *options, *self.args]


def is_this_host(host: str):
    """Whether ``host`` (a name or an address) is this host, in its network namespace: one can bind to its
    address. None if it is neither an address nor a known name."""
    try:
        ip = socket.getaddrinfo(host, None)[0][4][0]
    except (socket.gaierror, UnicodeError):
        return None
    with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((ip, 0))
        except OSError:  # EADDRNOTAVAIL
            return False
    return True


def _send(send, pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        send(pid, sig)


class Ranks:
    """The job's processes here (pid -> name and log) and the launcher's stop signals: the first SIGTERM / SIGINT
    sets ``signum``, a second SIGKILLs at once. ``helpers`` (msrun's scheduler) are stopped after the ranks. The
    first rank's log is copied to our stdout as it grows."""

    def __init__(self, follow):
        self.logs, self.ended, self.helpers, self.signum = {}, {}, set(), None
        self._follow, self._copied = follow, 0

    def __enter__(self):
        self._previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        return self

    def __exit__(self, *exc):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)

    def _on_signal(self, signum, _frame):
        if self.signum is not None:
            print(f"launcher: {signal.Signals(signum).name} again: killing the ranks now", file=sys.stderr, flush=True)
            self.kill()
        self.signum = self.signum or signum

    def add(self, pid: int, name: str, log, helper: bool = False) -> None:
        self.logs[pid] = (name, log)
        if helper:
            self.helpers.add(pid)

    def poll(self) -> None:
        """Reap every child that has ended (Popen's return code); copy what the followed log has gained."""
        with contextlib.suppress(ChildProcessError):
            while (ended := os.waitpid(-1, os.WNOHANG))[0]:
                self.ended[ended[0]] = os.waitstatus_to_exitcode(ended[1])
        with contextlib.suppress(OSError), open(self._follow, "rb") as log:
            log.seek(self._copied)
            text = log.read()
            self._copied += len(text)
            sys.stdout.buffer.write(text)
            sys.stdout.flush()

    def running(self, pids) -> list:
        return [pid for pid in pids if pid not in self.ended]

    def failed(self):
        return next((pid for pid, code in self.ended.items() if code and pid in self.logs), None)

    def wait(self, pids, timeout: float = float("inf"), watch: bool = False) -> None:
        """Until each of ``pids`` has ended or ``timeout`` has passed; ``watch``: or a stop signal or a failure."""
        deadline = time.monotonic() + timeout
        while self.running(pids) and time.monotonic() < deadline:
            if watch and (self.signum is not None or self.failed() is not None):
                return
            time.sleep(0.2)
            self.poll()

    def kill(self) -> None:
        """SIGKILL to what still runs and to each rank's session (its children; a group outlives its leader)."""
        for pid in self.logs:
            if pid not in self.ended:
                _send(os.kill, pid, signal.SIGKILL)
            if pid not in self.helpers:
                _send(os.killpg, pid, signal.SIGKILL)

    def stop(self, timeout: int) -> None:
        """SIGTERM to the ranks, ``timeout`` seconds to finish the step and save; the same to the helpers; SIGKILL."""
        for pids, limit, what in ((set(self.logs) - self.helpers, timeout, "ranks"), (self.helpers, 10, "helpers")):
            for pid in self.running(pids):
                _send(os.kill, pid, signal.SIGTERM)
            self.wait(pids, limit)
            if self.running(pids):
                print(f"launcher: {what} still running {limit}s after SIGTERM: killing them", file=sys.stderr)
        self.kill()
        self.wait(self.logs, 10)

    def supervise(self, timeout: int, logs: str) -> int:
        """0 once every process has ended well; after a stop signal, 128 + its number. The first process to fail
        is named (the end of its log, then the error) and ends the job: the others would wait for it forever."""
        self.poll()
        self.wait(self.logs, watch=True)
        if self.signum is not None:
            print(f"launcher: {signal.Signals(self.signum).name} received: SIGTERM to the ranks of this host, "
                  f"waiting up to {timeout}s", file=sys.stderr, flush=True)
            self.stop(timeout)
            print(f"launcher: stopped; logs: {logs}", file=sys.stderr)
            return 128 + self.signum
        if (failed := self.failed()) is not None:
            name, log = self.logs[failed]
            message = failure(name, self.ended[failed], log, pid=failed)
            self.stop(timeout)
            raise UserError(message)
        return 0
