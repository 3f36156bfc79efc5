"""The training loop: ``train_one_epoch`` runs the optimizer steps of one epoch, ``fit`` runs the epochs and
hands every step's and epoch's end to the callbacks (checkpoints, best-keeping, plateau, evaluation, stop), in
their declared order, and raises the end one of them asked for once all have run.

The loop itself knows no policy: it steps, logs the original's step line, and refuses a diverged loss. The
callbacks share state only through the Loop's declared fields; the kill tests' fault points are called from
``_round`` alone.
"""
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from src.engine import faults
from src.engine.state import TrainState
from src.errors import UserError
from src.logs import RankWriter


class Stopped(Exception):
    """Training stopped on a signal after saving its position; ``code`` is the exit code (128 + signal),
    ``line`` what the run says once the position is saved (where, and how to resume)."""

    def __init__(self, code, line=""):
        super().__init__(code)
        self.code, self.line = code, line


@dataclass
class EpochStats:
    """What the loop measured in this epoch (the callbacks read it; none writes it)."""
    losses: list = field(default_factory=list)
    data_wait: float = 0.0
    overflows: int = 0
    start: float = field(default_factory=time.time)
    seconds: float = 0.0        # the epoch's training time (evaluation not included)


@dataclass
class Loop:
    """What the callbacks see: the one-step cell, the network it trains, the state and this epoch's stats.

    ``batches(epoch, first_step)``: an iterator of the epoch's optimizer steps from ``first_step`` on, each a
    list of micro-batches. ``lr``: the schedule (one rate per optimizer step), replaced by plateau reductions.
    ``writer``: the run's src.logs.RankWriter (result lines and files from rank 0 only).

    The callbacks share state through the fields below the marker and nothing else, each set by one callback
    and read by those that run after it (``Callback.order``); ``fit`` clears them before every round of calls.
    """

    train_step: object
    net: object
    state: TrainState
    steps_per_epoch: int
    n_epochs: int
    batches: Callable[[int, int], Iterator[Sequence]]
    lr: np.ndarray
    writer: RankWriter
    stats: EpochStats = field(default_factory=EpochStats)
    # --- shared by the callbacks (cleared before every round) ---
    val: object = None          # this epoch's validation result (Evaluate; read by LogEpoch, ReduceOnPlateau, KeepBest)
    new_best: bool = False      # best.ckpt now holds this epoch's network (KeepBest; read by RecordBest)
    save_now: bool = False      # save this position although the schedule does not (a failed evaluation, a stop;
    #                             read by CheckpointSaver)
    end: BaseException | None = None  # raised once this round's callbacks (the save included) have run
    _checked: tuple | None = field(default=None, init=False, repr=False)

    @property
    def global_step(self) -> int:
        return self.train_step.global_step

    def current_lr(self) -> float:
        """The rate of the last optimizer step (skipped overflow steps do not advance the schedule)."""
        return float(self.lr[max(self.global_step, 1) - 1])

    def check_finite(self, epoch: int, step: int, where: str) -> None:
        """Refuse a diverged state before anything is saved from it (UserError); the weights of one position
        are checked once, whoever asks first."""
        if self._checked != (epoch, step):
            check_finite_state(self.train_step.cell, where, self.current_lr())
            self._checked = (epoch, step)

    def end_with(self, error: BaseException) -> None:
        """End the run with ``error`` once this round's callbacks have run; the first request wins."""
        if self.end is None:
            self.end = error


class Callback:
    """A policy of the loop. ``on_step_end`` runs after every optimizer step, ``on_epoch_end`` after each
    epoch; the callbacks run in ``order`` (lowest first; equal orders in list order), so that one that reads a
    shared field of the Loop runs after the one that sets it. Callbacks without an order run last."""

    order = 1000

    def on_step_end(self, loop: Loop, epoch: int, step: int) -> None:
        pass

    def on_epoch_end(self, loop: Loop, epoch: int) -> None:
        pass


def check_finite_state(train_step, where: str, lr: float) -> None:
    """Refuse to save (and stop) a diverged state: one non-finite tensor poisons every later result."""
    bad = [p.name for p in train_step.get_parameters() if not np.isfinite(p.asnumpy()).all()]
    if bad:
        raise UserError(f"training diverged at {where}: {len(bad)} tensors hold NaN/inf (e.g. {', '.join(bad[:3])}) "
                        f"at learning rate {lr:.4g}; nothing was saved for this step. Lower --lr_max (or raise "
                        f"--warmup_epochs) and resume from the last checkpoint with --resume=auto")


def _round(loop: Loop, callbacks: Sequence[Callback], epoch: int, step: int | None = None) -> None:
    """One round of calls: every callback's ``on_step_end`` (``step`` given) or ``on_epoch_end``, in order,
    each followed by the fault-injection points of the kill tests (src.engine.faults); then the end a
    callback asked for, if any."""
    loop.save_now, loop.end = False, None
    if step is None:
        loop.val, loop.new_best = None, False
    for callback in callbacks:
        if step is None:
            callback.on_epoch_end(loop, epoch)
            faults.after(callback, loop, epoch)
        else:
            callback.on_step_end(loop, epoch, step)
    if loop.end is not None:
        if isinstance(loop.end, Stopped) and loop.end.line:
            loop.writer.say(loop.end.line)  # said only now: the position is saved
        raise loop.end


def train_one_epoch(loop: Loop, epoch: int, first_step: int, callbacks: Sequence[Callback], log_step) -> None:
    """Optimizer steps ``first_step``..steps_per_epoch of ``epoch``; ``log_step(epoch, step, loss, step_time,
    data_wait)`` records each one. Raises UserError on a non-finite loss (nothing saved for it)."""
    iterator = loop.batches(epoch, first_step)
    for step in range(first_step, loop.steps_per_epoch + 1):
        t0 = time.time()
        batches = next(iterator)
        t1 = time.time()
        result = loop.train_step(batches)
        if result.overflow:
            loop.stats.overflows += 1
            loop.writer.say(f"overflow: step skipped, loss scale {result.scale_before:g} -> {result.scale_after:g}")
        elif not math.isfinite(result.loss):
            raise UserError(f"training diverged at epoch {epoch} step {step}: the loss is {result.loss} at "
                            f"learning rate {loop.current_lr():.4g}; no checkpoint was written for "
                            f"it. Lower --lr_max (or raise --warmup_epochs) and resume with --resume=auto")
        loop.stats.data_wait += t1 - t0
        loop.stats.losses.append(result.loss)
        loop.state.epoch, loop.state.step = epoch, step
        log_step(epoch, step, result.loss, time.time() - t0, t1 - t0)
        _round(loop, callbacks, epoch, step)


def fit(loop: Loop, callbacks: Sequence[Callback], log_step, resumed_losses=()) -> TrainState:
    """Run the epochs from the state's position to ``loop.n_epochs``; returns the final state.
    ``resumed_losses``: the losses of the interrupted epoch's finished steps (for its mean loss). The
    callbacks run in their ``order``."""
    callbacks = sorted(callbacks, key=lambda callback: callback.order)
    start_epoch, done = loop.state.next_position(loop.steps_per_epoch)
    for epoch in range(start_epoch, loop.n_epochs + 1):
        first = done + 1 if epoch == start_epoch else 1
        loop.stats = EpochStats(losses=list(resumed_losses) if epoch == start_epoch else [])
        train_one_epoch(loop, epoch, first, callbacks, log_step)
        loop.stats.seconds = time.time() - loop.stats.start
        _round(loop, callbacks, epoch)
    return loop.state
