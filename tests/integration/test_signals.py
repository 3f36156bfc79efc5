"""Ctrl-C against MindSpore's graph runtime: each graph run installs a C SIGINT handler that turns SIGINT
into SIGTERM (``DefaultIntHandler``: kill(getpid(), SIGTERM)); deliver_sigint_to_python() keeps SIGINT
a SIGINT. Fresh interpreters: the fix must run before mindspore is imported."""
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = """
import os, signal, sys, time
if {fix}:
    from src.train.signals import deliver_sigint_to_python
    deliver_sigint_to_python()
import mindspore as ms
import numpy as np
ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda signum, _frame: print("python handler:", signal.Signals(signum).name, flush=True))
ms.nn.Dense(2, 2)(ms.Tensor(np.ones((1, 2), np.float32))).asnumpy()  # a graph run
os.kill(os.getpid(), signal.SIGINT)
time.sleep(1)
"""


def _run(fix):
    return subprocess.run([sys.executable, "-c", PROGRAM.format(fix=fix)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_mindspore_turns_sigint_into_sigterm():
    """The reason for the fix; if this fails, MindSpore stopped doing it and the fix can go."""
    res = _run(fix=False)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "python handler: SIGTERM" in res.stdout and "SIGINT" not in res.stdout


def test_sigint_reaches_python_as_sigint():
    res = _run(fix=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.splitlines() == ["python handler: SIGINT"]


def test_must_run_before_mindspore_is_imported():
    res = subprocess.run([sys.executable, "-c", "import mindspore\nfrom src.train.signals import "
                          "deliver_sigint_to_python\ndeliver_sigint_to_python()"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 1 and "must run before mindspore is imported" in res.stderr


@pytest.mark.parametrize("disposition, expected", [(signal.SIG_IGN, "ignored"), (signal.SIG_DFL, "KeyboardInterrupt")],
                         ids=["ignored-at-start", "default-at-start"])
def test_sigint_ignored_at_start_stays_ignored(disposition, expected):
    program = ("import os, signal, time\nfrom src.train.signals import deliver_sigint_to_python\n"
               "deliver_sigint_to_python()\ntry:\n    os.kill(os.getpid(), signal.SIGINT)\n    time.sleep(1)\n"
               "    print('ignored')\nexcept KeyboardInterrupt:\n    print('KeyboardInterrupt')\n")
    res = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, timeout=60,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, disposition))
    assert res.stdout.strip() == expected, res.stderr
