"""The position of a training run, saved into and restored from every training checkpoint in one place.

The checkpoint entries that hold it are named once, by field, in src.weights.checkpoint.STATE_ENTRIES (the
names the earlier versions wrote, ``epoch_num``, ``step_num``, ..., so checkpoints of those versions still resume).
"""
import json
from dataclasses import asdict, dataclass

from src.errors import UserError
from src.weights.checkpoint import STATE_ENTRIES


@dataclass
class TrainState:
    """``epoch``/``step``: the last optimizer step done (step == steps_per_epoch: the epoch is complete).
    ``fingerprint``: the result-changing config as JSON; ``lr_steps``: the schedule's length when saved."""

    epoch: int = 0
    step: int = 0
    best_top1: float = -1.0
    best_epoch: int = 0
    plateau: str = ""
    fingerprint: str | None = None
    lr_steps: int = 0

    def checkpoint_fields(self) -> dict:
        """The checkpoint entries that hold this state (src.weights.checkpoint.STATE_ENTRIES)."""
        values = {**asdict(self), "best_top1": float(self.best_top1), "fingerprint": self.fingerprint or ""}
        return {entry: values[field] for field, entry in STATE_ENTRIES.items()}

    @classmethod
    def from_checkpoint(cls, saved: dict, steps_per_epoch: int) -> "TrainState":
        """The state a training checkpoint recorded; older ones hold whole epochs only (no step_num)."""
        values = {field: saved[entry] for field, entry in STATE_ENTRIES.items() if entry in saved}
        return cls(epoch=int(values["epoch"]), step=int(values.get("step", steps_per_epoch)),
                   best_top1=float(values.get("best_top1", -1.0)), best_epoch=int(values.get("best_epoch", 0)),
                   plateau=values.get("plateau") or "", fingerprint=values.get("fingerprint") or None,
                   lr_steps=int(values.get("lr_steps", 0)))

    def next_position(self, steps_per_epoch: int) -> tuple[int, int]:
        """(epoch to run, steps already done in it)."""
        if self.step >= steps_per_epoch:
            return self.epoch + 1, 0
        return max(self.epoch, 1), self.step

    def global_step(self, steps_per_epoch: int) -> int:
        epoch, step = self.next_position(steps_per_epoch)
        return (epoch - 1) * steps_per_epoch + step


def check_fingerprint(saved: str | None, current: dict, allowed, path, warn) -> None:
    """A resumed run must compute what the saved one did: a changed key is an error unless ``allowed``
    names it. ``current``: the result-changing keys now; ``warn(message)`` reports accepted changes."""
    if saved is None:
        warn(f"{path} records no config (written by an older version): resuming without checking it")
        return
    saved = json.loads(saved)
    changed = [k for k in saved if k in current and current[k] != saved[k] and k not in allowed]
    if changed:
        listed = ", ".join(f"{k} {saved[k]!r} -> {current[k]!r}" for k in changed)
        raise UserError(f"--resume: the config differs from the run in {path.parent} ({listed}); resume with "
                        f"its values, start a new run in another --result_path, or accept the change on "
                        f"purpose with --resume_allow=[{','.join(changed)}]")
    for k in allowed:
        if k in saved and k in current and current[k] != saved[k]:
            warn(f"resume: {k} changed on purpose: {saved[k]!r} -> {current[k]!r}")
