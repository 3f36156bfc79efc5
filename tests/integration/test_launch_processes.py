"""src/launch/processes.py on real processes: how one ended, its children and environment, the graceful
stop (SIGTERM, then SIGKILL to the group), the launcher's stop signals."""
import os
import signal
import subprocess
import sys
import time

import pytest

from src.launch.processes import (StepFailed, StopSignals, alive, check_step, children, describe_exit, environ,
                                  session_leader, shell_status, stop_gracefully, tail, tee)


@pytest.mark.parametrize("code, text", [
    (0, "exited with code 0"), (1, "exited with code 1"), (-9, "was killed by SIGKILL"),
    (143, "exited with code 143 (stopped by SIGTERM)"), (130, "exited with code 130 (stopped by SIGINT)")])
def test_describe_exit(code, text):
    assert describe_exit(code) == text


def sleeper(ignore_term=False, **env):
    """A child in a session of its own, itself with a child (its group holds both)."""
    program = ("import signal, subprocess, sys, time\n"
               f"{'signal.signal(signal.SIGTERM, signal.SIG_IGN)' if ignore_term else ''}\n"
               "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
               "print('ready', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", program], env={**os.environ, **env}, stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    assert proc.stdout.readline() == "ready\n"
    return proc


def test_children_environ_and_session():
    proc = sleeper(MS_ROLE="MS_WORKER", RANK_ID="3")
    try:
        kids = children(proc.pid)
        assert len(kids) == 1 and os.getpgid(kids[0]) == proc.pid
        assert environ(proc.pid)["RANK_ID"] == "3" and session_leader(proc.pid) and not session_leader(kids[0])
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not alive(proc.pid) and children(proc.pid) == [] and environ(proc.pid) == {}


def test_stop_gracefully_kills_what_ignores_sigterm_and_the_children(capsys):
    polite, stubborn = sleeper(), sleeper(ignore_term=True)
    kids = children(polite.pid) + children(stubborn.pid)
    t0 = time.monotonic()
    stop_gracefully([polite.pid, stubborn.pid], 2, "workers")
    assert 2 <= time.monotonic() - t0 < 10
    assert polite.wait(5) == -signal.SIGTERM and stubborn.wait(5) == -signal.SIGKILL
    time.sleep(0.5)
    assert not any(alive(pid) for pid in kids)
    assert capsys.readouterr().err == "launcher: workers still running 2s after SIGTERM: killing them\n"


def test_stop_signals_first_sets_second_kills():
    killed = []
    with StopSignals(killed.append) as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
        assert stop.name == "SIGINT" and stop.exit_code == 130 and not killed
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
        assert killed == ["SIGTERM"] and stop.name == "SIGINT"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_tail(tmp_path):
    (tmp_path / "log").write_text("".join(f"{i}\n" for i in range(9)))
    assert tail(tmp_path / "log", 3) == ["6", "7", "8"] and tail(tmp_path / "none") == []


def test_tee_copies_the_output_and_returns_the_status(tmp_path, capfd):
    program = "import sys; print('out 1'); print('err 1', file=sys.stderr, flush=True); print('out 2'); sys.exit(3)"
    assert tee([sys.executable, "-c", program], tmp_path / "log") == 3
    assert (tmp_path / "log").read_text() == "out 1\nout 2\n"
    assert capfd.readouterr() == ("out 1\nout 2\n", "err 1\n")
    assert tee([sys.executable, "-c", program], tmp_path / "log", merge_stderr=True) == 3
    assert sorted((tmp_path / "log").read_text().splitlines()) == ["err 1", "out 1", "out 2"]
    assert tee([sys.executable, "-c", "import os; os.kill(os.getpid(), 9)"], tmp_path / "log") == 128 + 9
    assert tee([sys.executable, "-c", program], tmp_path / "log", start="out 2") == 3
    assert (tmp_path / "log").read_text() == "out 2\n"


def test_check_step_keeps_a_shell_status():
    check_step(0)
    with pytest.raises(StepFailed) as failed:
        check_step(-15)
    assert failed.value.status == 143 and shell_status(2) == 2
