"""Per-step learning rates, precomputed for the whole run (the original's formulas).

All modes warm up linearly from lr_init to lr_max over warmup_epochs. "steps" then keeps lr_max and
multiplies by 0.1 at GLOBAL STEPS 50, 100 and 150 — the original's boundaries, which are steps, not
epochs (with UCF101 on 8 cards, 9 steps per epoch, most of training runs at lr_max * 0.001).
``milestones`` (epochs) replaces those boundaries for users who want epoch milestones.
"""
import json
import math

import numpy as np

ORIGINAL_STEP_BOUNDARIES = (50, 100, 150)


def _warmup(i, lr_init, lr_max, warmup_steps):
    return lr_init + (lr_max - lr_init) * i / warmup_steps


def _steps(i, lr_max, boundaries):
    return lr_max * 0.1 ** sum(i >= b for b in boundaries)


def _poly(i, lr_max, total, warmup):
    base = 1.0 - (i - warmup) / (total - warmup)
    return max(lr_max * base * base, 0.0)


def _cosine(i, lr_max, total, warmup):
    # the original's variant: linear decay times a cosine of 0.47 periods, floor 1e-5
    decay = total - warmup
    return lr_max * ((total - i) / decay * 0.5 * (1 + math.cos(math.pi * 2 * 0.47 * i / decay)) + 0.00001)


def _linear(i, lr_max, lr_end, total, warmup):
    return lr_max - (lr_max - lr_end) * (i - warmup) / (total - warmup)


def get_lr(lr_init, lr_end, lr_max, warmup_epochs, total_epochs, steps_per_epoch, lr_decay_mode,
           milestones=None):
    """float32 array of one learning rate per global step."""
    total = int(steps_per_epoch * total_epochs)
    warmup = int(steps_per_epoch * warmup_epochs)
    boundaries = ORIGINAL_STEP_BOUNDARIES
    if milestones:
        boundaries = tuple(int(m * steps_per_epoch) for m in milestones)
    rates = []
    for i in range(total):
        if i < warmup:
            # cosine warms up one step ahead, as the original
            lr = _warmup(i + 1 if lr_decay_mode == "cosine" else i, lr_init, lr_max, warmup)
        elif lr_decay_mode == "steps":
            lr = _steps(i, lr_max, boundaries)
        elif lr_decay_mode == "poly":
            lr = _poly(i, lr_max, total, warmup)
        elif lr_decay_mode == "cosine":
            lr = _cosine(i, lr_max, total, warmup)
        elif lr_decay_mode == "linear":
            lr = _linear(i, lr_max, lr_end, total, warmup)
        elif lr_decay_mode == "plateau":
            lr = lr_max  # lowered during training by Plateau
        else:
            raise ValueError(f"lr_decay_mode '{lr_decay_mode}' is not one of steps, poly, cosine, linear, plateau")
        rates.append(lr)
    return np.array(rates, dtype=np.float32)


def create_schedule(schedule, *, n_epochs, steps_per_epoch):
    """One rate per optimizer step for the config's schedule section (``cfg.schedule``)."""
    return get_lr(schedule.lr_init, schedule.lr_end, schedule.lr_max, schedule.warmup_epochs, n_epochs,
                  steps_per_epoch, schedule.lr_decay_mode, schedule.lr_milestones or None)


class Plateau:
    """ReduceLROnPlateau on the validation loss (upstream 3D-ResNets' ``--lr_scheduler plateau``, PyTorch's
    rule: a loss is better below best * (1 - 1e-4); after more than ``patience`` epochs without a better
    one the rate is multiplied by ``factor`` from the next step on, and the count restarts).

    Its state (best, bad epochs, the global steps of every reduction) travels in the training checkpoint;
    ``apply`` re-applies the reductions to a recomputed LR array on resume.
    """

    THRESHOLD = 1e-4

    def __init__(self, patience, factor=0.1, state=None):
        self.patience, self.factor = patience, factor
        state = json.loads(state) if state else {}
        self.best = state.get("best") if state.get("best") is not None else math.inf
        self.bad_epochs = state.get("bad_epochs", 0)
        self.reductions = state.get("reductions", [])

    def step(self, loss, global_step):
        """Record an epoch's validation loss; True when the rate is lowered from ``global_step`` on."""
        if loss < self.best * (1 - self.THRESHOLD):
            self.best, self.bad_epochs = loss, 0
            return False
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.reductions.append(int(global_step))
            self.bad_epochs = 0
            return True
        return False

    def apply(self, lr):
        """A copy of ``lr`` with every recorded reduction applied."""
        lr = np.array(lr, np.float32)
        for step in self.reductions:
            lr[step:] *= self.factor
        return lr

    def state(self):
        return json.dumps({"best": self.best if math.isfinite(self.best) else None, "bad_epochs": self.bad_epochs,
                           "reductions": self.reductions})
