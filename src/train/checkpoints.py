"""Training checkpoints: ``resnet3d-<dataset>-<epoch>_<step>.ckpt``, keep-max rotation, resume.

A training checkpoint holds the network, the optimiser state (momentum, learning-rate array, global
step) and the epoch it ends, so a resumed run continues exactly where the saved one stopped.
"""
import json
import logging
import os
import re
from pathlib import Path

import mindspore as ms

from src.errors import UserError
from src.weights.checkpoint import read_checkpoint, save_checkpoint_atomic

log = logging.getLogger("resnet3d")
BEST_NAME = "best.ckpt"
BEST_METRICS = "best_metrics.json"


class CheckpointManager:
    def __init__(self, result_path, dataset, keep_max):
        self.dir = Path(result_path)
        self.prefix = f"resnet3d-{dataset}"
        self.keep_max = int(keep_max)
        self.pattern = re.compile(rf"^{re.escape(self.prefix)}-(\d+)_(\d+)\.ckpt$")

    def epoch_checkpoints(self):
        """Existing epoch checkpoints, oldest first: list of (epoch, path)."""
        found = []
        if self.dir.is_dir():
            for path in self.dir.iterdir():
                m = self.pattern.match(path.name)
                if m:
                    found.append((int(m.group(1)), path))
        return sorted(found)

    def save(self, train_step, epoch, steps_per_epoch):
        path = self.dir / f"{self.prefix}-{epoch}_{steps_per_epoch}.ckpt"
        save_checkpoint_atomic(train_step, path, append_dict={"epoch_num": int(epoch)})
        existing = self.epoch_checkpoints()
        for _, old in existing[:max(0, len(existing) - self.keep_max)]:
            old.unlink()
        return path

    def save_best(self, net, metrics):
        path = save_checkpoint_atomic(net, self.dir / BEST_NAME)
        tmp = self.dir / f".{BEST_METRICS}.tmp"
        tmp.write_text(json.dumps(metrics, indent=1))
        os.replace(tmp, self.dir / BEST_METRICS)
        return path

    def best_metrics(self):
        path = self.dir / BEST_METRICS
        return json.loads(path.read_text()) if path.is_file() else None

    def resolve_resume(self, resume):
        """The checkpoint to resume from: '' -> None, 'auto' -> the latest here (or None), else the path."""
        if not resume:
            return None
        if resume == "auto":
            existing = self.epoch_checkpoints()
            if not existing:
                log.info("resume=auto: no checkpoint in %s, starting from scratch", self.dir)
                return None
            return existing[-1][1]
        path = Path(resume)
        if not path.is_file():
            raise UserError(f"--resume {path} not found: give a checkpoint written by train.py or 'auto'")
        return path


def restore_training_state(train_step, path):
    """Load network + optimiser state from a train.py checkpoint; return the epoch it ended."""
    params = read_checkpoint(path)
    if "epoch_num" not in params or "global_step" not in params:
        raise UserError(f"{path} is not a train.py checkpoint (no epoch_num / optimiser state): use it as "
                        f"--pretrain_path to fine-tune from it instead of --resume")
    epoch = int(params.pop("epoch_num").asnumpy())
    expected = {p.name for p in train_step.get_parameters()}
    missing = sorted(expected - set(params))
    if missing:
        raise UserError(f"{path} does not match this model/optimiser (missing {len(missing)}: "
                        f"{', '.join(missing[:6])}); resume with the same config it was trained with")
    not_loaded, _ = ms.load_param_into_net(train_step, params, strict_load=True)
    if not_loaded:
        raise UserError(f"{path}: could not restore {', '.join(not_loaded[:6])}")
    return epoch
