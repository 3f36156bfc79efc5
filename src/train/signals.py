"""SIGTERM / SIGINT during training (what a cluster scheduler or Ctrl-C sends): the first one asks the
loop to finish its current step, save the position and exit with 128 + signal; a second one exits at once.

With several ranks every rank must stop after the same step (a rank that stops alone leaves the others
waiting in the gradient all-reduce): ``poll()`` then all-reduces the flag once per step.

Ctrl-C needs ``deliver_sigint_to_python()`` first: MindSpore's graph runtime wraps each graph run in a
``SignalGuard`` (libmindspore_common) whose C handler ``DefaultIntHandler`` turns SIGINT into
``kill(getpid(), SIGTERM)``, and its worker threads restore each other's handler so that it stays
installed between steps too. Python's own SIGINT handler would then never run: the user would read
"SIGTERM" and get exit 143.
"""
import _thread
import contextlib
import os
import signal
import sys
import threading

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    def __init__(self, rank_size=1):
        self.rank_size = rank_size
        self.signum = None
        self.flag = False
        self._previous = {}
        self._reduce = None

    def __enter__(self):
        for sig in SIGNALS:
            with contextlib.suppress(ValueError):  # not the main thread: no handler there
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        return False

    def _handle(self, signum, _frame):
        if self.signum is not None:
            os.write(2, f"\n{signal.Signals(signum).name} again: exiting now\n".encode())
            os._exit(128 + signum)
        self.signum = signum
        os.write(2, f"\n{signal.Signals(signum).name}: finishing the current step, then saving\n".encode())

    @property
    def name(self):
        return signal.Signals(self.signum).name if self.signum else "a signal on another rank"

    @property
    def exit_code(self):
        return 128 + (self.signum or signal.SIGTERM)

    def poll(self):
        """Whether to stop after this step (agreed by all ranks); sets and returns ``flag``."""
        local = self.signum is not None
        if self.rank_size > 1:
            local = self._any_rank(local)
        self.flag = self.flag or local
        return self.flag

    def _any_rank(self, local):
        import mindspore as ms
        import numpy as np

        if self._reduce is None:
            from mindspore import ops
            self._reduce = ops.AllReduce(ops.ReduceOp.SUM)  # CPU supports only SUM: > 0 means any rank
        return bool(self._reduce(ms.Tensor(np.array([float(local)], np.float32))).asnumpy()[0] > 0)


def deliver_sigint_to_python():
    """Make SIGINT reach Python's handler (KeyboardInterrupt, or StopRequest's) whatever C handler
    MindSpore installs. Call it before importing mindspore, in the entry script's ``__main__``.

    SIGINT is blocked in this thread, hence in every thread started afterwards (threads inherit the
    mask), so no C handler ever runs for it; a watcher thread takes it with ``sigwaitinfo`` and raises
    it in the main thread as if it had arrived there. Forked children (the dataset workers) get the
    mask back. A SIGINT ignored at start (``nohup``, ``cmd &`` in a script) stays ignored.
    """
    if "mindspore" in sys.modules:
        raise RuntimeError("deliver_sigint_to_python() must run before mindspore is imported (its threads "
                           "would not block SIGINT)")
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, None):
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    os.register_at_fork(after_in_child=lambda: signal.pthread_sigmask(signal.SIG_SETMASK, previous))
    threading.Thread(target=_forward_sigint, name="sigint", daemon=True).start()


def _forward_sigint():
    while True:
        signal.sigwaitinfo({signal.SIGINT})
        _thread.interrupt_main(signal.SIGINT)  # runs the Python handler in the main thread
