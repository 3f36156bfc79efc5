"""The policies of a training run, one small callback each, in the order ``fit`` calls them at an epoch's end:
evaluate -> log the epoch -> plateau -> keep the best -> save the epoch checkpoint -> stop on a signal.

The epoch checkpoint is written last and records the best so far, so a run killed before it redoes the whole
epoch on resume (best.ckpt included) and ends bit-identical to an uninterrupted one.
"""
from src.engine import faults
from src.engine.fit import Callback, Loop, Stopped, check_finite_state
from src.errors import UserError


class CheckpointSaver(Callback):
    """Epoch checkpoints every ``every_epochs`` epochs (and after the last), mid-epoch ones every ``every_steps``
    global steps; at most ``keep_max`` kept. ``write``: False on ranks other than the main one (they still
    check the state, so that every rank stops on a diverged one)."""

    def __init__(self, run_dir, every_epochs, every_steps, keep_max, write=True, extras=None):
        self.run_dir, self.every_epochs, self.every_steps = run_dir, every_epochs, every_steps
        self.keep_max, self.write, self.extras = keep_max, write, extras or {}
        self.saved_at = None

    def save(self, loop: Loop, epoch: int, step: int, checked=False) -> None:
        from src.weights.checkpoint import save_checkpoint

        if not checked:
            check_finite_state(loop.train_step.cell, f"epoch {epoch} step {step}", loop.current_lr())
        loop.state.epoch, loop.state.step, loop.state.lr_steps = epoch, step, len(loop.lr)
        if self.write:
            save_checkpoint(loop.train_step.cell, self.run_dir.epoch_checkpoint(epoch, step),
                            append_dict={**loop.state.checkpoint_fields(), **self.extras})
            self.run_dir.rotate(self.keep_max)
        self.saved_at = (epoch, step)

    def on_step_end(self, loop, epoch, step):
        global_step = (epoch - 1) * loop.steps_per_epoch + step
        if self.every_steps and global_step % self.every_steps == 0 and step < loop.steps_per_epoch:
            self.save(loop, epoch, step)

    def on_epoch_end(self, loop, epoch):
        if epoch % self.every_epochs == 0 or epoch == loop.n_epochs:
            self.save(loop, epoch, loop.steps_per_epoch, checked=loop.stats.checked_finite)


class StopOnSignal(Callback):
    """SIGTERM / SIGINT (``stop``, a src.train.signals.StopRequest): after the current step, save the position
    (through ``saver``), say how to resume and raise Stopped with 128 + the signal."""

    def __init__(self, stop, saver: CheckpointSaver):
        self.stop, self.saver = stop, saver

    def _stopped(self, loop, epoch, step):
        loop.say(f"stopped by {self.stop.name} at epoch {epoch} step {step}; state saved to "
                 f"{self.saver.run_dir.epoch_checkpoint(epoch, step)}; resume with --resume=auto")
        raise Stopped(self.stop.exit_code)

    def on_step_end(self, loop, epoch, step):
        if self.stop.poll() and step < loop.steps_per_epoch:
            if self.saver.saved_at != (epoch, step):
                self.saver.save(loop, epoch, step)
            self._stopped(loop, epoch, step)

    def on_epoch_end(self, loop, epoch):
        if self.stop.flag:
            if self.saver.saved_at != (epoch, loop.steps_per_epoch):
                self.saver.save(loop, epoch, loop.steps_per_epoch, checked=loop.stats.checked_finite)
            self._stopped(loop, epoch, loop.steps_per_epoch)


class Evaluate(Callback):
    """Validation every ``interval`` epochs and after the last: ``evaluate(net)`` -> result (src.metrics
    Accuracy), kept in ``loop.stats.val``. A bad validation video does not lose the epoch's training: the
    epoch checkpoint is saved before the error propagates."""

    def __init__(self, evaluate, interval, saver: CheckpointSaver):
        self.evaluate, self.interval, self.saver = evaluate, interval, saver

    def on_epoch_end(self, loop, epoch):
        if epoch % self.interval and epoch != loop.n_epochs:
            return
        try:
            loop.stats.val = self.evaluate(loop.net)
        except UserError:
            self.saver.save(loop, epoch, loop.steps_per_epoch)
            raise


class LogEpoch(Callback):
    """The original's epoch lines, the CSV row and the curves (src.train.logger.TrainLogger)."""

    def __init__(self, logger, clips_per_epoch):
        self.logger, self.clips_per_epoch = logger, clips_per_epoch

    def on_epoch_end(self, loop, epoch):
        s = loop.stats
        self.logger.epoch(epoch, loop.steps_per_epoch, s.losses, s.seconds, self.clips_per_epoch, s.data_wait,
                          loop.current_lr(), s.val, s.overflows)


class KillPoint(Callback):
    """A fault-injection point between two policies (src.engine.faults)."""

    def __init__(self, name):
        self.name = name

    def on_epoch_end(self, loop, epoch):
        faults.point(self.name, epoch)


class ReduceOnPlateau(Callback):
    """lr_decay_mode=plateau: the rate drops 10x when the validation loss has not improved for ``patience``
    epochs (``plateau``: src.train.lr.Plateau; ``set_lr(array)`` puts a new schedule into the optimizer)."""

    def __init__(self, plateau, base_lr, patience, set_lr):
        self.plateau, self.base_lr, self.patience, self.set_lr = plateau, base_lr, patience, set_lr

    def on_epoch_end(self, loop, epoch):
        val = loop.stats.val
        if val is None:
            return
        reduced = self.plateau.step(val.loss, loop.global_step)
        loop.state.plateau = self.plateau.state()
        if reduced:
            before = loop.current_lr()
            loop.lr = self.set_lr(self.plateau.apply(self.base_lr))
            after = float(loop.lr[min(loop.global_step, len(loop.lr) - 1)])
            loop.say(f"plateau: validation loss {val.loss:.4f} has not improved for more than {self.patience} "
                     f"epochs: learning rate {before:.4g} -> {after:.4g} from step {loop.global_step + 1}")


class KeepBest(Callback):
    """best.ckpt (the network and ``extras``, e.g. the model's settings) and its metrics JSON whenever the
    video top-1 improves."""

    def __init__(self, run_dir, write=True, extras=None):
        self.run_dir, self.write, self.extras = run_dir, write, extras or {}

    def on_epoch_end(self, loop, epoch):
        val = loop.stats.val
        if val is None or val.top1 <= loop.state.best_top1:
            return
        check_finite_state(loop.train_step.cell, f"epoch {epoch} (best)", loop.current_lr())
        loop.stats.checked_finite = True
        loop.state.best_top1, loop.state.best_epoch = val.top1, epoch
        if self.write:
            self._save(loop.net, epoch, val)
        faults.point("after_best", epoch)
        loop.say(f"new best video top-1 {100 * val.top1:.1f}% at epoch {epoch}: saved {self.run_dir.best_ckpt}")

    def _save(self, net, epoch, val):
        from src.atomic import write_json
        from src.weights.checkpoint import save_checkpoint

        save_checkpoint(net, self.run_dir.best_ckpt, append_dict=self.extras or None)
        faults.point("between_best_files", epoch)
        metrics = dict(epoch=epoch, line=val.line(), **{k: v for k, v in val.to_dict().items()
                                                         if k != "video_predictions"})
        write_json(self.run_dir.best_metrics, metrics, indent=1)
