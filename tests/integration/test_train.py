"""Training: freezing, learning, checkpoints, kill-and-resume equality, plateau and overflow handling, and the
errors of train.py / eval.py. Results are read from what the trainer returns and the files it writes. (A whole
train -> eval run through the scripts is in tests/e2e/test_train_then_eval.py.)"""
import csv
import re

import numpy as np
import pytest

import mindspore as ms
import eval as eval_script
import train as train_script
from src.config import load_config
from src.models.factory import build_model
from src.runtime import setup_runtime
from src.engine.fit import Callback
from src.rundir import RunDir
from src.train import trainer
from src.train.lr import create_schedule
from src.train.step import create_train_step
from tests.helpers.tiny import TINY_RUN_OPTIONS, checkpoint_tensors


def model_from_config(cfg):
    return build_model(cfg.arch)


def make_toy_step(cfg, net, steps_per_epoch):
    """The configured training step of ``net`` with the configured schedule over ``steps_per_epoch``."""
    lr = create_schedule(cfg.schedule, n_epochs=cfg.n_epochs, steps_per_epoch=steps_per_epoch)
    return create_train_step(net, lr, cfg.optimisation, device_target=cfg.device_target,
                             n_classes=cfg.n_classes)


def run_toy_training(cfg, **kwargs):
    """What train.py does: set up the runtime from the config, then train into its result folder; returns
    the trainer's summary."""
    runtime = setup_runtime(cfg.placement, cfg.runtime, cfg.seed, cfg.infer_precision)
    return trainer.train(cfg, runtime, RunDir(cfg.result_path, cfg.dataset), **kwargs)


class KillAfterEpoch(Callback):
    """Raises Killed at the end of one epoch, after every policy of the run (as a kill there would)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, loop, epoch):
        if epoch == self.epoch:
            raise Killed


def _batch(n=4, classes=8, seed=0):
    rng = np.random.RandomState(seed)
    clips = rng.randn(n, 3, 4, 32, 32).astype(np.float32)
    return ms.Tensor(clips), ms.Tensor(rng.randint(0, classes, n).astype(np.int32))


def _cfg(args, *extra):
    return load_config(list(args) + list(extra))


def test_frozen_modules_stay_exactly_unchanged(tiny_args):
    cfg = _cfg(tiny_args, "--start_ft=layer4", "--lr_max=0.5", "--warmup_epochs=0", "--mode=PYNATIVE")
    net = model_from_config(cfg)
    before = {p.name: p.asnumpy().copy() for p in net.get_parameters()}
    step = make_toy_step(cfg, net, steps_per_epoch=5)
    clip, label = _batch()
    for _ in range(3):
        step([(clip, label)])
    for p in net.get_parameters():
        frozen = p.name.split(".")[0] in ("conv1", "bn1", "layer1", "layer2", "layer3")
        if "moving_" in p.name:
            continue  # BN statistics follow the data in training mode, as upstream
        changed = not np.array_equal(before[p.name], p.asnumpy())
        assert changed != frozen, p.name


def test_train_step_learns_a_batch(tiny_args, graph_mode):
    cfg = _cfg(tiny_args, "--start_ft=conv1", "--lr_max=0.05", "--warmup_epochs=0", "--weight_decay=0")
    net = model_from_config(cfg)
    step = make_toy_step(cfg, net, steps_per_epoch=30)
    clip, label = _batch()
    losses = [step([(clip, label)]).loss for _ in range(25)]
    assert losses[-1] < 0.5 * losses[0], losses


class Killed(Exception):
    pass


def test_kill_and_resume_gives_identical_weights(tiny_args, tmp_path):
    common = ["--n_epochs=3", "--batch_size=8", "--warmup_epochs=1", "--lr_max=0.05", "--start_ft=conv1",
              "--h_flip=True", "--train_crop=random", "--keep_checkpoint_max=5"]
    full = run_toy_training(_cfg(tiny_args, *common, f"--result_path={tmp_path / 'full'}"))
    assert [p.split("/")[-1] for p in full["checkpoints"]] == [
        f"resnet3d-synthetic-{e}_3.ckpt" for e in (1, 2, 3)]

    killed_dir = tmp_path / "killed"
    with pytest.raises(Killed):
        run_toy_training(_cfg(tiny_args, *common, f"--result_path={killed_dir}"), callbacks=[KillAfterEpoch(1)])
    first_epoch = killed_dir / "resnet3d-synthetic-1_3.ckpt"
    written = first_epoch.stat().st_mtime_ns
    resumed = run_toy_training(_cfg(tiny_args, *common, f"--result_path={killed_dir}", "--resume=auto"))
    assert first_epoch.stat().st_mtime_ns == written  # resumed after epoch 1: it was not trained again
    assert resumed["global_step"] == full["global_step"] == 9
    a, b = checkpoint_tensors(full["checkpoints"][-1]), checkpoint_tensors(resumed["checkpoints"][-1])
    assert a.keys() == b.keys()
    worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
    print(f"kill-and-resume max weight difference: {worst}")
    assert worst == 0.0
    with open(killed_dir / "training_curves.csv") as f:
        assert [int(r["global_step"]) for r in csv.DictReader(f)] == list(range(1, 10))


def test_eval_refuses_a_mismatching_checkpoint(tiny_args, tmp_path, capsys):
    net = model_from_config(_cfg(tiny_args, "--n_classes=5"))
    ms.save_checkpoint(net, str(tmp_path / "five.ckpt"))
    assert eval_script.main(tiny_args + [f"--inference_ckpt_path={tmp_path / 'five.ckpt'}"]) == 2
    err = capsys.readouterr().err
    assert "shape mismatch: fc.bias (5,) vs model (8,)" in err and "--n_classes=5" in err


def test_a_missing_frame_is_one_error_line_not_a_pipeline_traceback(tiny_dataset, tmp_path, capsys):
    import shutil

    jpg = tmp_path / "jpg"
    shutil.copytree(tiny_dataset["video_path"], jpg)
    for frame in list(jpg.glob("*/*/image_0000[45].jpg")):  # every 4-frame window of 8 frames needs one
        frame.unlink()
    args = list(TINY_RUN_OPTIONS) + [f"--video_path={jpg}", f"--annotation_path={tiny_dataset['annotation_path']}",
                                           f"--result_path={tmp_path / 'r'}", "--n_epochs=1", "--batch_size=24",
                                           "--num_workers=2"]
    assert train_script.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert re.fullmatch(rf"error: frame {jpg}/\w+/\w+/image_0000[45].jpg is missing: re-extract this video "
                        r"\(generate_video_jpgs.py\) or run check_dataset.py", err[-1]), err[-1]


def test_plateau_schedule_and_mixup_resume_identically(tiny_args, tmp_path):
    common = ["--n_epochs=3", "--batch_size=8", "--warmup_epochs=0", "--lr_max=0.05", "--start_ft=conv1",
              "--lr_decay_mode=plateau", "--plateau_patience=0", "--eval_in_training=True", "--mixup_alpha=0.4",
              "--cutmix_alpha=0.4", "--keep_checkpoint_max=5"]
    full = run_toy_training(_cfg(tiny_args, *common, f"--result_path={tmp_path / 'full'}"))
    killed = tmp_path / "killed"
    with pytest.raises(Killed):
        run_toy_training(_cfg(tiny_args, *common, f"--result_path={killed}"),
                         callbacks=[KillAfterEpoch(2)])
    resumed = run_toy_training(_cfg(tiny_args, *common, f"--result_path={killed}", "--resume=auto"))
    a, b = checkpoint_tensors(full["checkpoints"][-1]), checkpoint_tensors(resumed["checkpoints"][-1])
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) == 0.0
    with open(tmp_path / "full" / "training_curves.csv") as f:
        rates = [float(r["lr"]) for r in csv.DictReader(f)]
    with open(killed / "training_curves.csv") as f:
        assert [float(r["lr"]) for r in csv.DictReader(f)] == rates
    # patience 0: the first epoch without a better validation loss lowers the (otherwise constant) rate
    assert all(b <= a for a, b in zip(rates, rates[1:])) and rates[-1] < rates[0]


def test_plateau_needs_evaluation(tiny_args, capsys):
    assert train_script.main(tiny_args + ["--lr_decay_mode=plateau", "--n_epochs=1", "--batch_size=8"]) == 2
    assert "--lr_decay_mode=plateau follows the validation loss" in capsys.readouterr().err


def test_an_overflow_in_training_is_skipped_counted_and_training_goes_on(tiny_args, tmp_path, capsys):
    """A loss scale so large that FP32 gradients overflow (3e38): the step is skipped, the scale halved."""
    cfg = _cfg(tiny_args, "--n_epochs=1", "--batch_size=8", "--loss_scale=3e38", "--loss_scale_type=dynamic",
               "--start_ft=conv1", "--mode=PYNATIVE")
    summary = run_toy_training(cfg)
    out = capsys.readouterr().out
    assert "overflow: step skipped, loss scale 3e+38 -> 1.5e+38" in out, out[-2000:]
    with open(tmp_path / "result" / "epoch_summary.csv") as f:
        row = next(csv.DictReader(f))
    assert int(row["overflow_steps"]) >= 1 and summary["global_step"] == 3
    assert int(row["overflow_steps"]) < 3  # training continued with the lowered scale
