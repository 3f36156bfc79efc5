"""src/engine: the training state, the loop and each policy callback on its own, with a real one-step cell
over a tiny network (conv + fc) and a real result folder."""
import json
import os
import signal
from types import SimpleNamespace

import mindspore as ms
import numpy as np
import pytest

from src.engine import callbacks as cb
from src.engine.fit import Callback, Loop, Stopped, fit
from src.engine.state import TrainState, check_fingerprint
from src.errors import UserError
from src.logs import RankWriter
from src.rundir import RunDir
from src.train.logger import TrainLogger
from src.train.signals import StopRequest
from src.train.step import build_train_step
from src.weights.checkpoint import read_checkpoint
from tests.helpers.nets import conv_fc_net

SPE, N_EPOCHS, N_CLASSES = 3, 2, 4


def make_loop(n_epochs=N_EPOCHS, state=None, rate=0.05, rank_id=0):
    ms.set_seed(0)
    net = conv_fc_net(N_CLASSES)
    lr = np.full(SPE * n_epochs, rate, np.float32)
    step = build_train_step(net, lr, start_ft="conv1", device_target="CPU", n_classes=N_CLASSES,
                            label_smoothing=0.1, momentum=0.9, weight_decay=1e-3, loss_scale=1.0)

    def batches(epoch, first_step):
        for s in range(first_step, SPE + 1):
            rng = np.random.default_rng([epoch, s])
            yield [(ms.Tensor(rng.standard_normal((2, 3, 2, 4, 4)).astype(np.float32)),
                    ms.Tensor(rng.integers(0, N_CLASSES, 2).astype(np.int32)))]

    said = []
    loop = Loop(train_step=step, net=net, state=state or TrainState(fingerprint="{}"), steps_per_epoch=SPE,
                n_epochs=n_epochs, batches=batches, lr=lr, writer=RankWriter(rank_id, say=said.append))
    return loop, said


class Record(Callback):
    def __init__(self, name, events):
        self.name, self.events = name, events

    def on_step_end(self, loop, epoch, step):
        self.events.append((self.name, "step", epoch, step))

    def on_epoch_end(self, loop, epoch):
        self.events.append((self.name, "epoch", epoch))


def no_log(*_):
    pass


def test_state_round_trips_through_checkpoint_fields():
    state = TrainState(epoch=3, step=2, best_top1=0.5, best_epoch=2, plateau="1,2", fingerprint='{"a": 1}',
                       lr_steps=30)
    back = TrainState.from_checkpoint(state.checkpoint_fields(), steps_per_epoch=5)
    assert back == state
    assert back.next_position(5) == (3, 2) and back.global_step(5) == 12
    done = TrainState.from_checkpoint({"epoch_num": 3}, steps_per_epoch=5)  # an older, whole-epoch checkpoint
    assert (done.step, done.next_position(5)) == (5, (4, 0))
    assert TrainState().next_position(5) == (1, 0)


def test_fingerprint_change_is_an_error_naming_the_key_unless_allowed(tmp_path):
    warned = []
    path = tmp_path / "run" / "x.ckpt"
    with pytest.raises(UserError, match=r"lr_max 0.1 -> 0.2.*--resume_allow=\[lr_max\]"):
        check_fingerprint('{"lr_max": 0.1, "seed": 1}', {"lr_max": 0.2, "seed": 1}, [], path, warned.append)
    check_fingerprint('{"lr_max": 0.1}', {"lr_max": 0.2}, ["lr_max"], path, warned.append)
    assert warned == ["resume: lr_max changed on purpose: 0.1 -> 0.2"]


def test_fit_steps_every_epoch_and_calls_callbacks_in_order():
    loop, _ = make_loop()
    events, logged = [], []
    state = fit(loop, [Record("a", events), Record("b", events)], lambda *a: logged.append(a[:2]))
    assert logged == [(e, s) for e in (1, 2) for s in (1, 2, 3)]
    assert events[:2] == [("a", "step", 1, 1), ("b", "step", 1, 1)]
    assert [e for e in events if e[1] == "epoch"] == [("a", "epoch", 1), ("b", "epoch", 1), ("a", "epoch", 2),
                                                      ("b", "epoch", 2)]
    assert (state.epoch, state.step) == (2, 3) and loop.global_step == 6


def test_fit_resumes_from_the_state_position():
    loop, _ = make_loop(state=TrainState(epoch=1, step=2))
    logged = []
    fit(loop, [], lambda *a: logged.append(a[:2]), resumed_losses=[1.0, 2.0])
    assert logged == [(1, 3), (2, 1), (2, 2), (2, 3)]


def test_a_non_finite_loss_stops_with_one_error():
    loop, _ = make_loop(rate=1e30)  # the weights overflow after the first step
    with pytest.raises(UserError, match="training diverged at epoch 1 step [23]: the loss is nan"):
        fit(loop, [], no_log)


def test_checkpoint_saver_writes_epochs_and_steps_and_rotates(tmp_path):
    run_dir = RunDir(tmp_path, "synthetic")
    loop, _ = make_loop(n_epochs=3)
    saver = cb.CheckpointSaver(run_dir, every_epochs=2, every_steps=2, keep_max=2)
    fit(loop, [saver], no_log)
    # global steps 2, 4, 6, 8 mid-epoch where not an epoch's last step; epochs 2 and 3 (the last): keep 2
    assert [(e, s) for e, s, _ in run_dir.checkpoints()] == [(3, 2), (3, 3)]
    saved = read_checkpoint(run_dir.epoch_checkpoint(3, 3))
    assert (int(saved["epoch_num"]), int(saved["step_num"]), int(saved["lr_steps"])) == (3, 3, 9)


def test_keep_best_saves_only_improvements(tmp_path):
    run_dir = RunDir(tmp_path, "synthetic")
    loop, said = make_loop(n_epochs=3)
    results = iter([0.5, 0.4, 0.75])

    def evaluate(net):
        top1 = next(results)
        return SimpleNamespace(top1=top1, loss=1.0, line=lambda: f"top-1: {top1}", to_dict=lambda: {"top1": top1})

    fit(loop, [cb.Evaluate(evaluate, 1), cb.KeepBest(run_dir), cb.RecordBest(run_dir),
               cb.CheckpointSaver(run_dir, 1, 0, 5)], no_log)
    assert (loop.state.best_top1, loop.state.best_epoch) == (0.75, 3)
    assert json.loads(run_dir.best_metrics.read_text())["epoch"] == 3
    assert [s for s in said if s.startswith("new best")] == [
        f"new best video top-1 50.0% at epoch 1: saved {run_dir.best_ckpt}",
        f"new best video top-1 75.0% at epoch 3: saved {run_dir.best_ckpt}"]
    assert float(read_checkpoint(run_dir.epoch_checkpoint(2, SPE))["best_top1"]) == 0.5


def test_a_failed_evaluation_keeps_the_epochs_training(tmp_path):
    run_dir = RunDir(tmp_path, "synthetic")
    loop, _ = make_loop()

    def evaluate(net):
        raise UserError("a bad validation video")

    with pytest.raises(UserError, match="bad validation video"):
        fit(loop, [cb.Evaluate(evaluate, 1), cb.CheckpointSaver(run_dir, 2, 0, 5)], no_log)
    assert [(e, s) for e, s, _ in run_dir.checkpoints()] == [(1, SPE)]


def test_a_real_sigterm_saves_the_position_and_stops_with_143(tmp_path):
    run_dir = RunDir(tmp_path, "synthetic")
    loop, said = make_loop()

    class SendSignal(Callback):
        order = 0  # before the run's policies: the signal arrives during the step

        def on_step_end(self, loop, epoch, step):
            if (epoch, step) == (1, 2):
                os.kill(os.getpid(), signal.SIGTERM)

    stop = StopRequest()
    with stop, pytest.raises(Stopped) as stopped:
        fit(loop, [SendSignal(), cb.CheckpointSaver(run_dir, 1, 0, 5), cb.StopOnSignal(stop, run_dir)], no_log)
    assert stopped.value.code == 143
    assert [(e, s) for e, s, _ in run_dir.checkpoints()] == [(1, 2)]
    assert said[-1].startswith("stopped by SIGTERM at epoch 1 step 2; state saved to ")


def test_reduce_on_plateau_lowers_the_rate_from_the_next_step():
    from src.train.lr import Plateau

    loop, said = make_loop(n_epochs=3)
    base = loop.lr.copy()
    set_rates = []

    def evaluate(net):
        return SimpleNamespace(top1=0.5, loss=1.0)

    plateau = cb.ReduceOnPlateau(Plateau(0), base, lambda rates: set_rates.append(rates) or rates)
    fit(loop, [plateau, cb.Evaluate(evaluate, 1)], no_log)  # listed out of order: each runs at its order
    # epoch 1 sets the best loss, epoch 2 does not improve it (patience 0): lowered from epoch 3 on
    assert len(set_rates) == 2 and loop.lr[SPE * 2] == pytest.approx(0.005)
    assert loop.lr[SPE * 2 - 1] == pytest.approx(0.05) and loop.state.plateau
    assert said[0].startswith("plateau: validation loss 1.0000 has not improved for more than 0 epochs")


def test_callbacks_run_in_their_declared_order_whatever_the_list_order():
    loop, _ = make_loop(n_epochs=1)
    events = []

    def ordered(name, order):
        record = Record(name, events)
        record.order = order
        return record

    fit(loop, [Record("undeclared", events), ordered("late", 50), ordered("early", 10)], no_log)
    assert [e[0] for e in events if e[1] == "epoch"] == ["early", "late", "undeclared"]
    policies = [cb.CheckpointSaver, cb.StopOnSignal, cb.RecordBest, cb.KeepBest, cb.ReduceOnPlateau, cb.LogEpoch,
                cb.Evaluate]
    assert sorted(policies, key=lambda c: c.order) == policies[::-1]  # the order callbacks.py documents


def _evaluations(*top1s):
    results = iter(top1s)

    def evaluate(net):
        top1 = next(results)
        return SimpleNamespace(top1=top1, top5=1.0, clip=top1, loss=1.0, line=lambda: f"top-1: {top1}",
                               to_dict=lambda: {"top1": top1})

    return evaluate


def _best_policies(run_dir, evaluate, writer):
    """The run's policies at an epoch's end (no plateau, no signals), with a real TrainLogger."""
    return [cb.Evaluate(evaluate, 1), cb.LogEpoch(TrainLogger(run_dir, writer), 8), cb.KeepBest(run_dir),
            cb.RecordBest(run_dir), cb.CheckpointSaver(run_dir, 1, 0, 5)]


def test_other_ranks_keep_the_same_state_but_write_and_say_nothing(tmp_path):
    main, said_main = make_loop(n_epochs=2)
    fit(main, _best_policies(RunDir(tmp_path / "rank0", "synthetic"), _evaluations(0.5, 0.75), main.writer), no_log)
    other, said_other = make_loop(n_epochs=2, rank_id=1)
    fit(other, _best_policies(RunDir(tmp_path / "rank1", "synthetic"), _evaluations(0.5, 0.75), other.writer),
        no_log)
    assert (other.state.best_top1, other.state.best_epoch) == (main.state.best_top1, main.state.best_epoch)
    assert [s for s in said_main if s.startswith("new best")] and said_other == []
    assert sorted(p.name for p in (tmp_path / "rank0").iterdir()) == [
        "best.ckpt", "best_metrics.json", "epoch_summary.csv", "resnet3d-synthetic-1_3.ckpt",
        "resnet3d-synthetic-2_3.ckpt", "training_curves.csv", "training_curves.png"]
    assert not (tmp_path / "rank1").exists()


class Killed(Exception):
    pass


@pytest.mark.parametrize("point, metrics_epoch, best_epoch", [
    ("after_eval", 1, 1), ("between_best_files", 1, 2), ("after_best", 2, 2)])
def test_kill_points_fire_after_their_callback_only(tmp_path, monkeypatch, point, metrics_epoch, best_epoch):
    """RESNET3D_KILL_AT=<point>:<epoch> stops the process right after the callback it names, before the
    epoch checkpoint (the kill is replaced by an exception here; tests/e2e/test_fault_recovery.py kills real
    processes)."""
    from src.engine import faults

    def kill(pid, sig):
        raise Killed(pid, sig)

    monkeypatch.setenv(faults.ENV, f"{point}:2")
    monkeypatch.setattr(faults, "os", SimpleNamespace(environ=os.environ, getpid=os.getpid, kill=kill))
    run_dir = RunDir(tmp_path, "synthetic")
    loop, _ = make_loop(n_epochs=3)
    with pytest.raises(Killed) as killed:
        fit(loop, _best_policies(run_dir, _evaluations(0.25, 0.5, 0.75), loop.writer), no_log)
    assert killed.value.args == (os.getpid(), signal.SIGKILL)
    assert json.loads(run_dir.best_metrics.read_text())["epoch"] == metrics_epoch
    assert loop.state.best_epoch == best_epoch
    assert [(e, s) for e, s, _ in run_dir.checkpoints()] == [(1, SPE)]
