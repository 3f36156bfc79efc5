"""A result folder (``result_path``) and every file in it: the one place that knows their names, how
they are written and how the checkpoint to resume or evaluate is found.

    resnet3d-<dataset>-<epoch>_<step>.ckpt   training state (network + optimiser + position + best so far)
    best.ckpt, best_metrics.json             the best validation epoch (eval_in_training)
    config_resolved.yaml                     the resolved config of the run
    train_<dataset>.log                      everything train.py printed (appended on resume)
    training_curves.csv / .png, epoch_summary.csv
    <dataset>_eval.log, <dataset>_<tag>_{clips.json, videos.json, confusion.png}

Names derive from the config's ``dataset`` only. Every write is atomic (src.atomic). ``lock()`` keeps a
second process off a folder in use: an OS-level lock, released on any exit, kill -9 included. The lock
file is opened without following a link and must be a regular file of its own (one hard link), so what
someone planted at ``.lock`` is refused, never written through.
"""
import fcntl
import json
import os
import re
import sys
from pathlib import Path

from src.atomic import NotOwnFile, make_dirs, open_own_file, remove_stale_temps
from src.errors import UserError

BEST_CKPT = "best.ckpt"
BEST_METRICS = "best_metrics.json"
CONFIG = "config_resolved.yaml"
CURVES_CSV = "training_curves.csv"
EPOCHS_CSV = "epoch_summary.csv"
CURVES_PNG = "training_curves.png"
LOCK = ".lock"
_CKPT = re.compile(r"^resnet3d-(?P<dataset>.+)-(?P<epoch>\d+)_(?P<step>\d+)\.ckpt$")


class RunDir:
    def __init__(self, path, dataset):
        self.path = Path(path)
        self.dataset = dataset
        self._lock_file = None

    def __repr__(self):
        return f"RunDir({str(self.path)!r}, {self.dataset!r})"

    def file(self, name):
        return self.path / name

    # --- names -------------------------------------------------------------------------------------
    @property
    def best_ckpt(self):
        return self.path / BEST_CKPT

    @property
    def best_metrics(self):
        return self.path / BEST_METRICS

    @property
    def config(self):
        return self.path / CONFIG

    @property
    def train_log(self):
        return self.path / f"train_{self.dataset}.log"

    @property
    def eval_log(self):
        return self.path / f"{self.dataset}_eval.log"

    def eval_output(self, tag, kind):
        """``<dataset>_<tag>_<kind>``, e.g. ucf101_eval_videos.json, ucf101_eval_onnx_confusion.png."""
        return self.path / f"{self.dataset}_{tag}_{kind}"

    def epoch_checkpoint(self, epoch, step):
        return self.path / f"resnet3d-{self.dataset}-{epoch}_{step}.ckpt"

    # --- finding checkpoints -------------------------------------------------------------------------
    def checkpoints(self, any_dataset=False):
        """Training checkpoints here, oldest first: [(epoch, step, path)]. ``any_dataset`` also lists
        other datasets' (a folder reused for another run)."""
        found = []
        if self.path.is_dir():
            for path in self.path.iterdir():
                m = _CKPT.match(path.name)
                if m and (any_dataset or m.group("dataset") == self.dataset):
                    found.append((int(m.group("epoch")), int(m.group("step")), path))
        return sorted(found)

    def latest_checkpoint(self):
        found = self.checkpoints()
        return found[-1][2] if found else None

    def checkpoint_to_evaluate(self):
        """best.ckpt, else the latest training checkpoint, else a UserError."""
        if self.best_ckpt.is_file():
            return self.best_ckpt
        latest = self.latest_checkpoint()
        if latest is None:
            raise UserError(f"{self.path} is a folder without best.ckpt or resnet3d-{self.dataset}-*.ckpt: "
                            f"pass a checkpoint file")
        return latest

    def holder(self):
        """Who holds this folder now (the lock's text, e.g. 'pid 123 (train.py)'), or None when no live process
        does. Only reads: a missing or odd lock file means nobody."""
        try:
            fd = open_own_file(self.path / LOCK, os.O_RDONLY)
        except (NotOwnFile, OSError):
            return None
        with os.fdopen(fd) as f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return f.read(200).strip() or "another process"
            return None

    def rotate(self, keep_max):
        """Delete all but the newest ``keep_max`` (>= 1) training checkpoints."""
        found = self.checkpoints()
        for _, _, old in found[:max(0, len(found) - max(1, keep_max))]:
            old.unlink(missing_ok=True)

    def read_best_metrics(self):
        path = self.best_metrics
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            return None

    # --- writing -------------------------------------------------------------------------------------
    def make(self):
        make_dirs(self.path)
        if not os.access(self.path, os.W_OK):
            raise UserError(f"result folder {self.path} is not writable: choose another --result_path")
        return self

    def lock(self):
        """Take this folder for this process, or fail at once if another process has it."""
        self.make()
        f = _open_lock_file(self.path / LOCK)
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            owner = f.read().strip() or "another process"
            f.close()
            raise UserError(f"result folder {self.path} is in use by {owner}: wait for it to finish, or pass "
                            f"another --result_path") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} ({' '.join(Path(a).name for a in sys.argv[:1])})\n")
        f.flush()
        self._lock_file = f  # held until this process exits (or unlock)
        remove_stale_temps(self.path)  # left by a process killed while writing
        return self

    def unlock(self):
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def _open_lock_file(path):
    """``path`` opened for reading and writing (created if absent), never through a symbolic link, and only
    if it is a regular file with no other name (a hard link's other file would be overwritten)."""
    try:
        return os.fdopen(open_own_file(path, os.O_RDWR | os.O_CREAT), "r+")
    except NotOwnFile as err:
        if err.kind == "link":
            raise UserError(f"{path} is a symbolic link; remove it (a run never makes one, and it is not "
                            f"followed: its target is left untouched)") from None
        what = "is not a regular file" if err.kind == "special" else f"has {err.info.st_nlink} hard links"
        raise UserError(f"{path} {what}; remove it (a run makes a plain file of its own, and writes nothing "
                        f"into this one)") from None
    except OSError as err:
        raise UserError(f"cannot open the lock file {path} ({err.strerror or err}): remove it, or pass "
                        f"another --result_path") from None
