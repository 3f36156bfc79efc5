"""Process supervision for every launcher: its main, the steps of a sequential launcher, how a failed process is
told, and a training job's processes on this host (``Ranks``), which the launcher reaps (as their parent, or their
subreaper once msrun has exited) and stops."""
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from src.errors import UserError

ROOT = Path(__file__).resolve().parents[2]


class StepFailed(Exception):
    """A step failed with this Popen return code and said why itself: the launcher adds nothing."""


def run_launcher(launch, argv=None, env=None) -> int:
    """A launcher's main: ``launch(args, environment)``. A UserError is one ``error:`` line and exit code 1; a
    failed step gives its status as a shell would (killed by signal N: 128 + N)."""
    try:
        return launch(sys.argv[1:] if argv is None else list(argv), dict(os.environ if env is None else env))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except StepFailed as failed:
        return 128 - failed.args[0] if failed.args[0] < 0 else failed.args[0]
    except KeyboardInterrupt:  # the step in the foreground had the Ctrl-C too
        return 130


def check_step(code: int) -> None:
    if code:
        raise StepFailed(code)


def run_step(*command, **popen) -> None:
    """A step in the foreground, after our lines."""
    sys.stdout.flush()
    check_step(subprocess.run([str(part) for part in command], **popen).returncode)


def run_logged(name: str, command, log: Path, **popen) -> None:
    """``command`` with its output in ``log``; a failure shows the end of the log, then one error line."""
    with open(log, "wb") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, **popen).returncode
    if code:
        raise UserError(failure(name, code, log, lines=20))


def tee(command, path, merge_stderr: bool = False, start: str = "", **popen) -> int:
    """``command | tee path`` (stderr merged on request); returns its Popen return code. With ``start``, the file
    begins at the first line that starts with it."""
    sys.stdout.flush()
    with open(path, "wb") as log, subprocess.Popen(command, stdout=subprocess.PIPE, **popen,
                                                   stderr=subprocess.STDOUT if merge_stderr else None) as proc:
        for line in iter(proc.stdout.readline, b""):
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
            start = "" if line.startswith(start.encode()) else start  # found: "" from then on
            log.write(b"" if start else line)
    return proc.returncode


def describe_exit(code: int) -> str:
    """How a process with this Popen return code ended."""
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    stopped = f" (stopped by {signal.Signals(code - 128).name})" if 128 < code < 160 else ""  # train.py saved first
    return f"exited with code {code}{stopped}"


def failure(name: str, code: int, log, lines: int = 5, pid=None) -> str:
    """The last ``lines`` of a failed process's log on stderr, each marked ``name |``; returns the error message."""
    with contextlib.suppress(OSError):
        for line in Path(log).read_text(errors="replace").splitlines()[-lines:]:
            print(f"{name} | {line}", file=sys.stderr)
    return f"{name}{f' (pid {pid})' if pid else ''} {describe_exit(code)}; its log: {log}"


def train_command(args, *options) -> list:
    """train.py with the launcher's ``options``, then ``args`` (scripts/common.sh's train_args: the seed scripts'
    fixed arguments, then the user's, which win)."""
    return [sys.executable, str(ROOT / "train.py"), *options, *args]


def _send(send, pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        send(pid, sig)


class Ranks:
    """The job's processes here (pid -> name and log) and the launcher's stop signals: the first SIGTERM / SIGINT
    sets ``signum``, a second SIGKILLs at once. ``helpers`` (msrun's scheduler) are stopped after the ranks. What
    a rank prints is in its log only (the launcher names each log)."""

    def __init__(self):
        self.logs, self.ended, self.helpers, self.signum = {}, {}, set(), None

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
        """Reap every child that has ended (Popen's return code)."""
        with contextlib.suppress(ChildProcessError):
            while (ended := os.waitpid(-1, os.WNOHANG))[0]:
                self.ended[ended[0]] = os.waitstatus_to_exitcode(ended[1])

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
