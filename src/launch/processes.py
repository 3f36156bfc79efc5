"""Processes of a launched job: how one ended, whether it runs, the signals that stop the job; the steps of a
sequential launcher (a failed step's status, `| tee`).

Linux only (the launchers run where msrun and HCCL do): processes are read from /proc.
"""
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class LaunchError(Exception):
    """A problem the user can fix; the launcher prints it as one ``error: ...`` line and exits 1."""


def run_launcher(launch, argv=None, env=None) -> int:
    """A launcher's main: ``launch(args, environment)``; a LaunchError is one ``error:`` line and exit 1."""
    try:
        return launch(sys.argv[1:] if argv is None else argv, dict(os.environ if env is None else env))
    except LaunchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def signal_name(number: int) -> str:
    return signal.Signals(number).name


def describe_exit(code: int) -> str:
    """How a process with this exit status ended, as Popen reports it (a signal is negative)."""
    if code < 0:
        return f"was killed by {signal_name(-code)}"
    how = f"exited with code {code}"
    if 128 < code < 160:  # train.py's own exit after a stop signal (it saves first)
        how += f" (stopped by {signal_name(code - 128)})"
    return how


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's zombie may linger until PID 1 reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def children(pid: int) -> list:
    """pids of the direct children of ``pid`` (none once it is gone)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def environ(pid: int) -> dict:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def session_leader(pid: int) -> bool:
    """Started in a session of its own (setsid): its pid is its process group, which holds its children."""
    with contextlib.suppress(OSError):
        return os.getpgid(pid) == pid
    return False


def kill(pid: int, sig: int, group: bool = False) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def wait_gone(pids, timeout: float) -> bool:
    """Wait until none of ``pids`` is alive; False if some still are after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def tail(path, lines: int = 5) -> list:
    try:
        return Path(path).read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def positive_int(env: dict, name: str, default: int, what: str) -> int:
    value = env.get(name) or str(default)
    if not value.isdigit() or int(value) < 1:
        raise LaunchError(f"{name} '{value}' is not a positive number{what}")
    return int(value)


class StopSignals:
    """SIGTERM / SIGINT to the launcher: the first sets ``signum`` (the launcher then stops its ranks
    gracefully), a second calls ``kill_now`` at once. Exit code: 128 + the first signal."""

    def __init__(self, kill_now):
        self.signum = None
        self._kill_now = kill_now
        self._previous = {}

    def __enter__(self):
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        return False

    def _handle(self, signum, _frame):
        if self.signum is None:
            self.signum = signum
        else:
            self._kill_now(signal_name(signum))

    @property
    def name(self):
        return signal_name(self.signum)

    @property
    def exit_code(self):
        return 128 + self.signum


def stop_gracefully(pids, timeout: int, what: str) -> None:
    """SIGTERM to each of ``pids`` still alive, ``timeout`` seconds for them (finish the step, save),
    then SIGKILL to their process groups (sessions of their own): what is left, their children included."""
    pids = [pid for pid in pids if alive(pid)]
    for pid in pids:
        kill(pid, signal.SIGTERM)
    if not wait_gone(pids, timeout):
        print(f"launcher: {what} still running {timeout}s after SIGTERM: killing them", file=sys.stderr, flush=True)
    for pid in pids:
        kill(pid, signal.SIGKILL, group=True)
    wait_gone(pids, 10)


class StepFailed(Exception):
    """A step's process failed and said why itself: the launcher exits with its status and adds nothing."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def shell_status(code: int) -> int:
    """The exit status a shell reports for a Popen return code (killed by signal N: 128 + N)."""
    return 128 - code if code < 0 else code


def check_step(code: int) -> None:
    if code:
        raise StepFailed(shell_status(code))


def tee(command, path, merge_stderr: bool = False, start: str = "", **popen) -> int:
    """Run ``command`` with its stdout (and its stderr, merged) copied to ours and to the file ``path``, as
    ``command | tee path`` does; with ``start``, the file begins at the first line that starts with it.
    Returns the command's shell exit status."""
    sys.stdout.flush()
    copying = not start
    with open(path, "wb") as log, subprocess.Popen(command, stdout=subprocess.PIPE,
                                                   stderr=subprocess.STDOUT if merge_stderr else None,
                                                   **popen) as proc:
        for line in iter(proc.stdout.readline, b""):
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
            copying = copying or line.startswith(start.encode())
            if copying:
                log.write(line)
    return shell_status(proc.returncode)
