"""Training: freezing, learning, checkpoints, kill-and-resume equality, eval.py on the result."""
import csv
import re

import numpy as np
import pytest

import mindspore as ms
import eval as eval_script
import train as train_script
from src.config import load_config
from src.models.resnet3d import ModelSpec, build_model
from src.runtime import setup_runtime
from conftest import TINY_ARGS
from src.train.step import train_step_from_config
from src.train.trainer import train as run_training


def model_from_config(cfg):
    return build_model(ModelSpec.from_config(cfg))


def build_train_step(cfg, net, steps_per_epoch):
    from src.train.lr import lr_from_config

    return train_step_from_config(cfg, net, lr_from_config(cfg, steps_per_epoch)), None


def train(cfg, **kwargs):
    """What train.py does: set up the runtime from the config, then train."""
    return run_training(cfg, setup_runtime(cfg), **kwargs)


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
    step, _ = build_train_step(cfg, net, steps_per_epoch=5)
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
    step, _ = build_train_step(cfg, net, steps_per_epoch=30)
    clip, label = _batch()
    losses = [step([(clip, label)]).loss for _ in range(25)]
    assert losses[-1] < 0.5 * losses[0], losses


def _weights(path):
    """The tensors of a checkpoint (its config string left out)."""
    return {k: v.asnumpy() for k, v in ms.load_checkpoint(str(path)).items() if not isinstance(v, str)}


class Killed(Exception):
    pass


def test_kill_and_resume_gives_identical_weights(tiny_args, tmp_path, capsys):
    common = ["--n_epochs=3", "--batch_size=8", "--warmup_epochs=1", "--lr_max=0.05", "--start_ft=conv1",
              "--h_flip=True", "--train_crop=random", "--keep_checkpoint_max=5"]
    full = train(_cfg(tiny_args, *common, f"--result_path={tmp_path / 'full'}"))
    assert [p.split("/")[-1] for p in full["checkpoints"]] == [
        f"resnet3d-synthetic-{e}_3.ckpt" for e in (1, 2, 3)]

    def kill_after_first_epoch(epoch, _):
        if epoch == 1:
            raise Killed

    killed_dir = tmp_path / "killed"
    with pytest.raises(Killed):
        train(_cfg(tiny_args, *common, f"--result_path={killed_dir}"), on_epoch_end=kill_after_first_epoch)
    resumed = train(_cfg(tiny_args, *common, f"--result_path={killed_dir}", "--resume=auto"))
    assert "resumed from" in capsys.readouterr().out
    assert resumed["global_step"] == full["global_step"] == 9
    a, b = _weights(full["checkpoints"][-1]), _weights(resumed["checkpoints"][-1])
    assert a.keys() == b.keys()
    worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
    print(f"kill-and-resume max weight difference: {worst}")
    assert worst == 0.0
    with open(killed_dir / "training_curves.csv") as f:
        assert [int(r["global_step"]) for r in csv.DictReader(f)] == list(range(1, 10))


@pytest.mark.slow
def test_train_then_eval_scripts(tiny_args, tmp_path, capsys):
    assert train_script.main(tiny_args + ["--n_epochs=2", "--batch_size=8", "--eval_in_training=True",
                                          "--keep_checkpoint_max=1", "--start_ft=conv1"]) == 0
    out = capsys.readouterr().out
    assert "epoch: 2 step: 3, loss is" in out and "per step time" in out and "clips/s" in out
    result = tmp_path / "result"
    names = sorted(p.name for p in result.iterdir())
    for expected in ("best.ckpt", "best_metrics.json", "config_resolved.yaml", "training_curves.csv",
                     "training_curves.png", "epoch_summary.csv", "resnet3d-synthetic-2_3.ckpt"):
        assert expected in names
    assert "resnet3d-synthetic-1_3.ckpt" not in names  # keep_checkpoint_max=1
    assert eval_script.main(tiny_args + [f"--inference_ckpt_path={result / 'best.ckpt'}", "--eval_subset=test"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-3].startswith("clip: ") and "top-1: " in lines[-3] and "%  top-5: " in lines[-3]
    assert lines[-2].startswith("mean class accuracy: ")
    assert lines[-1] == "videos: ground truth 8, predicted 8, missing 0; clips: 16"
    for name in ("synthetic_eval_clips.json", "synthetic_eval_videos.json", "synthetic_eval_confusion.png"):
        assert (result / name).is_file()


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
    args = list(TINY_ARGS) + [f"--video_path={jpg}", f"--annotation_path={tiny_dataset['annotation_path']}",
                                           f"--result_path={tmp_path / 'r'}", "--n_epochs=1", "--batch_size=24",
                                           "--num_workers=2"]
    assert train_script.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert re.fullmatch(rf"error: frame {jpg}/\w+/\w+/image_0000[45].jpg is missing: re-extract this video "
                        r"\(generate_video_jpgs.py\) or run check_dataset.py", err[-1]), err[-1]


def test_plateau_schedule_and_mixup_resume_identically(tiny_args, tmp_path, capsys):
    common = ["--n_epochs=3", "--batch_size=8", "--warmup_epochs=0", "--lr_max=0.05", "--start_ft=conv1",
              "--lr_decay_mode=plateau", "--plateau_patience=0", "--eval_in_training=True", "--mixup_alpha=0.4",
              "--cutmix_alpha=0.4", "--keep_checkpoint_max=5"]
    full = train(_cfg(tiny_args, *common, f"--result_path={tmp_path / 'full'}"))
    out = capsys.readouterr().out
    assert "plateau: validation loss" in out  # patience 0: the first epoch without a better loss lowers it
    killed = tmp_path / "killed"
    with pytest.raises(Killed):
        train(_cfg(tiny_args, *common, f"--result_path={killed}"),
              on_epoch_end=lambda epoch, _: (_ for _ in ()).throw(Killed()) if epoch == 2 else None)
    resumed = train(_cfg(tiny_args, *common, f"--result_path={killed}", "--resume=auto"))
    a, b = _weights(full["checkpoints"][-1]), _weights(resumed["checkpoints"][-1])
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) == 0.0
    with open(tmp_path / "full" / "training_curves.csv") as f:
        rates = [float(r["lr"]) for r in csv.DictReader(f)]
    with open(killed / "training_curves.csv") as f:
        assert [float(r["lr"]) for r in csv.DictReader(f)] == rates
    assert min(rates) < max(rates)


def test_plateau_needs_evaluation(tiny_args, capsys):
    assert train_script.main(tiny_args + ["--lr_decay_mode=plateau", "--n_epochs=1", "--batch_size=8"]) == 2
    assert "--lr_decay_mode=plateau follows the validation loss" in capsys.readouterr().err


def test_an_overflow_in_training_is_skipped_counted_and_training_goes_on(tiny_args, tmp_path, capsys):
    """A loss scale so large that FP32 gradients overflow (3e38): the step is skipped, the scale halved."""
    cfg = _cfg(tiny_args, "--n_epochs=1", "--batch_size=8", "--loss_scale=3e38", "--loss_scale_type=dynamic",
               "--start_ft=conv1", "--mode=PYNATIVE")
    summary = train(cfg)
    out = capsys.readouterr().out
    assert "overflow: step skipped, loss scale 3e+38 -> 1.5e+38" in out, out[-2000:]
    with open(tmp_path / "result" / "epoch_summary.csv") as f:
        row = next(csv.DictReader(f))
    assert int(row["overflow_steps"]) >= 1 and summary["global_step"] == 3
    assert int(row["overflow_steps"]) < 3  # training continued with the lowered scale
