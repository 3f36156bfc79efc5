"""SIGTERM / SIGINT during training (what a cluster scheduler or Ctrl-C sends): the first one asks the
loop to finish its current step, save the position and exit with 128 + signal; a second one exits at once.

With several ranks every rank must stop after the same step (a rank that stops alone leaves the others
waiting in the gradient all-reduce): ``poll()`` then all-reduces the flag once per step.
"""
import contextlib
import os
import signal

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
