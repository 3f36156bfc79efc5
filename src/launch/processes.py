"""What every launcher shares: its main, the steps of a sequential launcher, how a failed process is told."""
import os
import signal
import subprocess
import sys
from pathlib import Path

from src.errors import UserError


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
    try:
        for line in Path(log).read_text(errors="replace").splitlines()[-lines:]:
            print(f"{name} | {line}", file=sys.stderr)
    except OSError:
        pass
    return f"{name}{f' (pid {pid})' if pid else ''} {describe_exit(code)}; its log: {log}"


def positive_int(env: dict, name: str, default: int, what: str) -> int:
    value = env.get(name) or str(default)
    if not value.isdigit() or int(value) < 1:
        raise UserError(f"{name} '{value}' is not a positive number{what}")
    return int(value)
