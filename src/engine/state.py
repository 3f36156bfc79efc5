"""The position of a training run, saved into and restored from every training checkpoint in one place.

A checkpoint's extra fields keep the names the earlier versions wrote (``epoch_num``, ``step_num``, ...), so
checkpoints of those versions still resume.
"""
import json
from dataclasses import dataclass

from src.errors import UserError


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
        return {"epoch_num": self.epoch, "step_num": self.step, "best_top1": float(self.best_top1),
                "best_epoch": self.best_epoch, "lr_steps": self.lr_steps, "config": self.fingerprint or "",
                "plateau": self.plateau}

    @classmethod
    def from_checkpoint(cls, saved: dict, steps_per_epoch: int) -> "TrainState":
        """The state a training checkpoint recorded; older ones hold whole epochs only (no step_num)."""
        epoch = int(saved["epoch_num"])
        step = int(saved["step_num"]) if "step_num" in saved else steps_per_epoch
        return cls(epoch=epoch, step=step, best_top1=float(saved.get("best_top1", -1.0)),
                   best_epoch=int(saved.get("best_epoch", 0)), plateau=saved.get("plateau") or "",
                   fingerprint=saved.get("config") or None, lr_steps=int(saved.get("lr_steps", 0)))

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
