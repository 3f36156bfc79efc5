"""src/launch/processes.py on real processes: how one ended, the steps of a sequential launcher,
a job's processes reaped with their exit status, a failed one named, the graceful stop (SIGTERM, then SIGKILL to
the session), the launcher's stop signals, msrun's processes adopted once it exits (its subreaper)."""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from src.errors import UserError
from src.launch.processes import ROOT, Ranks, StepFailed, check_step, describe_exit, failure, run_launcher, tee


@pytest.mark.parametrize("code, text", [
    (0, "exited with code 0"), (1, "exited with code 1"), (-9, "was killed by SIGKILL"),
    (143, "exited with code 143 (stopped by SIGTERM)"), (130, "exited with code 130 (stopped by SIGINT)")])
def test_describe_exit(code, text):
    assert describe_exit(code) == text


def test_tee_copies_the_output_and_returns_the_code(tmp_path, capfd):
    program = "import sys; print('out 1'); print('err 1', file=sys.stderr, flush=True); print('out 2'); sys.exit(3)"
    assert tee([sys.executable, "-c", program], tmp_path / "log") == 3
    assert (tmp_path / "log").read_text() == "out 1\nout 2\n"
    assert capfd.readouterr() == ("out 1\nout 2\n", "err 1\n")
    assert tee([sys.executable, "-c", program], tmp_path / "log", merge_stderr=True) == 3
    assert sorted((tmp_path / "log").read_text().splitlines()) == ["err 1", "out 1", "out 2"]
    assert tee([sys.executable, "-c", program], tmp_path / "log", start="out 2") == 3
    assert (tmp_path / "log").read_text() == "out 2\n"


def test_launcher_main_gives_one_error_line_or_the_steps_shell_status(capsys):
    def launch(code):
        return lambda argv, env: check_step(code) or 0

    assert run_launcher(launch(0), []) == 0 and run_launcher(launch(2), []) == 2
    assert run_launcher(launch(-15), []) == 143 and capsys.readouterr() == ("", "")  # the step said why
    assert run_launcher(lambda argv, env: (_ for _ in ()).throw(UserError("bad")), []) == 1
    assert capsys.readouterr().err == "error: bad\n"
    with pytest.raises(StepFailed):
        check_step(1)


def test_failure_shows_the_end_of_the_log_once(tmp_path, capsys):
    (tmp_path / "log").write_text("".join(f"line {i}\n" for i in range(9)) + "error: it broke\n")
    assert failure("rank 1", -9, tmp_path / "log", lines=2, pid=42) == (
        f"rank 1 (pid 42) was killed by SIGKILL; its log: {tmp_path / 'log'}")
    assert capsys.readouterr().err == "rank 1 | line 8\nrank 1 | error: it broke\n"
    assert failure("x", 2, tmp_path / "none") == f"x exited with code 2; its log: {tmp_path / 'none'}"


def spawn(log, program, session=True):
    """A child like a rank: output in ``log``, a session of its own (its group holds its children)."""
    with open(log, "wb") as out:
        return os.posix_spawn(sys.executable, [sys.executable, "-c", program], os.environ, setsid=session,
                              file_actions=[(os.POSIX_SPAWN_DUP2, out.fileno(), 1)])


SLEEPER = ("import signal, subprocess, sys, time\n{}\n"
           "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
           "print('ready', flush=True)\ntime.sleep(60)\n")


def wait_ready(*logs):
    deadline = time.monotonic() + 30
    while not all(log.is_file() and "ready" in log.read_text() for log in logs):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_failed_rank_is_named_and_the_others_stopped(tmp_path, capfd):
    with Ranks() as ranks:
        polite = spawn(tmp_path / "0.log", SLEEPER.format(""))
        stubborn = spawn(tmp_path / "1.log", SLEEPER.format("signal.signal(signal.SIGTERM, signal.SIG_IGN)"))
        wait_ready(tmp_path / "0.log", tmp_path / "1.log")
        failing = spawn(tmp_path / "2.log", "print('the end', flush=True); raise SystemExit(3)")
        for rank, pid in enumerate((polite, stubborn, failing)):
            ranks.add(pid, f"rank {rank}", tmp_path / f"{rank}.log")
        t0 = time.monotonic()
        with pytest.raises(UserError) as err:
            ranks.supervise(2, "logs")
    assert 2 <= time.monotonic() - t0 < 15
    assert str(err.value) == f"rank 2 (pid {failing}) exited with code 3; its log: {tmp_path / '2.log'}"
    assert ranks.ended[polite] == -signal.SIGTERM and ranks.ended[stubborn] == -signal.SIGKILL
    out, errors = capfd.readouterr()
    assert out == ""  # what a rank prints is in its log only
    assert errors == "rank 2 | the end\nlauncher: ranks still running 2s after SIGTERM: killing them\n"
    time.sleep(0.5)
    assert not group_members(polite) and not group_members(stubborn)  # their children, in their sessions, too


def group_members(pgid):
    """The live processes (zombies excluded) of process group ``pgid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
            found += [stat.parent.name] if int(pgrp) == pgid and state != "Z" else []
    return found


def test_first_stop_signal_stops_gracefully_a_second_kills(tmp_path, capfd):
    with Ranks() as ranks:
        pid = spawn(tmp_path / "0.log", SLEEPER.format("signal.signal(signal.SIGTERM, signal.SIG_IGN)"))
        wait_ready(tmp_path / "0.log")
        ranks.add(pid, "rank 0", tmp_path / "0.log")
        os.kill(os.getpid(), signal.SIGINT)
        t0 = time.monotonic()
        subprocess.Popen([sys.executable, "-c", f"import os, time; time.sleep(1); os.kill({os.getpid()}, 15)"])
        assert ranks.supervise(60, "the logs") == 130
    assert time.monotonic() - t0 < 30 and ranks.ended[pid] == -signal.SIGKILL
    assert capfd.readouterr().err == ("launcher: SIGINT received: SIGTERM to the ranks of this host, waiting up to "
                                      "60s\nlauncher: SIGTERM again: killing the ranks now\nlauncher: stopped; logs: "
                                      "the logs\n")
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


FAKE_MSRUN = """
import os, subprocess, sys
for role, rank in (("MS_SCHED", "0"), ("MS_WORKER", "0"), ("MS_WORKER", "1")):
    env = {**os.environ, "MS_ROLE": role, "RANK_ID": rank}
    code = "import sys, time; time.sleep(1); sys.exit(7 if %r == ('MS_WORKER', '1') else 0)" % ((role, rank),)
    subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=role == "MS_WORKER")
"""
ADOPT = """
import ctypes, json, subprocess, sys
from pathlib import Path
from src.errors import UserError
from src.launch.processes import Ranks
from src.launch.run_msrun import adopt
assert ctypes.CDLL(None).prctl(36, 1, 0, 0, 0) == 0
with Ranks() as ranks:
    subprocess.run([sys.executable, "-c", sys.argv[1]], check=True)
    workers = adopt(ranks, Path("logs"))
    try:
        ranks.supervise(5, "logs")
    except UserError as err:
        print(json.dumps([workers, sorted(name for name, _ in ranks.logs.values()), str(err)]))
"""


def test_msruns_processes_are_adopted_once_it_exits(tmp_path):
    """msrun --join=False exits once it has started the scheduler and the workers: as their subreaper, the
    launcher reaps them, with the exit status msrun would have had to read from its own log."""
    res = subprocess.run([sys.executable, "-c", ADOPT, FAKE_MSRUN], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert res.returncode == 0, res.stderr
    workers, names, error = json.loads(res.stdout)
    assert workers == 2 and names == ["msrun's scheduler", "rank 0", "rank 1"]
    assert error.startswith("rank 1 (pid ") and error.endswith(") exited with code 7; its log: logs/worker_1.log")
