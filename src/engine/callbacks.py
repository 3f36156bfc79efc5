"""The policies of a training run, one small callback each. They run in their ``order`` at an epoch's end:

    10 Evaluate -> 20 LogEpoch -> 30 ReduceOnPlateau -> 40 KeepBest -> 50 RecordBest -> 60 StopOnSignal
    -> 70 CheckpointSaver

and share state only through the Loop's declared fields (src.engine.fit): Evaluate sets ``val``, KeepBest
``new_best``; a failed evaluation or a stop sets ``save_now`` and asks the loop to ``end_with`` its error once
the saver has run. Every line and file goes through ``loop.writer`` (rank 0 only).

The epoch checkpoint is written last and records the best so far, so a run killed before it redoes the whole
epoch on resume (best.ckpt included) and ends bit-identical to an uninterrupted one.
"""
from src.engine.fit import Callback, Loop, Stopped
from src.errors import UserError


class Evaluate(Callback):
    """Validation every ``interval`` epochs and after the last: ``evaluate(net)`` -> result (src.metrics
    Accuracy), kept in ``loop.val``. A bad validation video does not lose the epoch's training: the epoch
    checkpoint is saved before its error ends the run."""

    order = 10

    def __init__(self, evaluate, interval):
        self.evaluate, self.interval = evaluate, interval

    def on_epoch_end(self, loop, epoch):
        if epoch % self.interval and epoch != loop.n_epochs:
            return
        try:
            loop.val = self.evaluate(loop.net)
        except UserError as err:
            loop.save_now = True
            loop.end_with(err)


class LogEpoch(Callback):
    """The original's epoch lines, the CSV row and the curves (src.train.logger.TrainLogger)."""

    order = 20

    def __init__(self, logger, clips_per_epoch):
        self.logger, self.clips_per_epoch = logger, clips_per_epoch

    def on_epoch_end(self, loop, epoch):
        s = loop.stats
        self.logger.epoch(epoch, loop.steps_per_epoch, s.losses, s.seconds, self.clips_per_epoch, s.data_wait,
                          loop.current_lr(), loop.val, s.overflows)


class ReduceOnPlateau(Callback):
    """lr_decay_mode=plateau: the rate drops 10x when the validation loss has not improved for more than the
    patience of ``plateau`` (src.train.lr.Plateau) epochs; ``set_lr(array)`` puts a new schedule into the
    optimizer."""

    order = 30

    def __init__(self, plateau, base_lr, set_lr):
        self.plateau, self.base_lr, self.set_lr = plateau, base_lr, set_lr

    def on_epoch_end(self, loop, epoch):
        val = loop.val
        if val is None:
            return
        reduced = self.plateau.step(val.loss, loop.global_step)
        loop.state.plateau = self.plateau.state()
        if reduced:
            before = loop.current_lr()
            loop.lr = self.set_lr(self.plateau.apply(self.base_lr))
            after = float(loop.lr[min(loop.global_step, len(loop.lr) - 1)])
            loop.writer.say(f"plateau: validation loss {val.loss:.4f} has not improved for more than "
                            f"{self.plateau.patience} epochs: learning rate {before:.4g} -> {after:.4g} from step "
                            f"{loop.global_step + 1}")


class KeepBest(Callback):
    """Whenever the video top-1 improves: the state's best, and best.ckpt (the network and ``extras``, e.g.
    the model's record); sets ``loop.new_best``."""

    order = 40

    def __init__(self, run_dir, extras=None):
        self.run_dir, self.extras = run_dir, extras or {}

    def on_epoch_end(self, loop, epoch):
        from src.weights.checkpoint import save_checkpoint

        val = loop.val
        if val is None or val.top1 <= loop.state.best_top1:
            return
        loop.check_finite(epoch, loop.steps_per_epoch, f"epoch {epoch} (best)")
        loop.state.best_top1, loop.state.best_epoch = val.top1, epoch
        loop.writer.write(save_checkpoint, loop.net, self.run_dir.best_ckpt, append_dict=self.extras or None)
        loop.new_best = True


class RecordBest(Callback):
    """After a new best.ckpt: its metrics JSON, and the line that says so."""

    order = 50

    def __init__(self, run_dir):
        self.run_dir = run_dir

    def on_epoch_end(self, loop, epoch):
        from src.atomic import write_json

        if not loop.new_best:
            return
        val = loop.val
        metrics = dict(epoch=epoch, line=val.line(), **{k: v for k, v in val.to_dict().items()
                                                         if k != "video_predictions"})
        loop.writer.write(write_json, self.run_dir.best_metrics, metrics, indent=1)
        loop.writer.say(f"new best video top-1 {100 * val.top1:.1f}% at epoch {epoch}: saved "
                        f"{self.run_dir.best_ckpt}")


class StopOnSignal(Callback):
    """SIGTERM / SIGINT (``stop``, a src.train.signals.StopRequest): after the current step, have the position
    saved (``save_now``), then end the run with Stopped (128 + the signal), saying how to resume."""

    order = 60

    def __init__(self, stop, run_dir):
        self.stop, self.run_dir = stop, run_dir

    def _stop(self, loop, epoch, step):
        loop.save_now = True
        loop.end_with(Stopped(self.stop.exit_code, f"stopped by {self.stop.name} at epoch {epoch} step {step}; state "
                                                   f"saved to {self.run_dir.epoch_checkpoint(epoch, step)}; resume "
                                                   f"with --resume=auto"))

    def on_step_end(self, loop, epoch, step):
        if self.stop.poll() and step < loop.steps_per_epoch:
            self._stop(loop, epoch, step)

    def on_epoch_end(self, loop, epoch):
        if self.stop.flag:
            self._stop(loop, epoch, loop.steps_per_epoch)


class CheckpointSaver(Callback):
    """Epoch checkpoints every ``every_epochs`` epochs (and after the last), mid-epoch ones every ``every_steps``
    global steps, and the position whenever ``loop.save_now`` asks; at most ``keep_max`` kept. Every rank checks
    the state (so that every rank stops on a diverged one); rank 0 writes."""

    order = 70

    def __init__(self, run_dir, every_epochs, every_steps, keep_max, extras=None):
        self.run_dir, self.every_epochs, self.every_steps = run_dir, every_epochs, every_steps
        self.keep_max, self.extras = keep_max, extras or {}

    def save(self, loop: Loop, epoch: int, step: int) -> None:
        from src.weights.checkpoint import save_checkpoint

        loop.check_finite(epoch, step, f"epoch {epoch} step {step}")
        loop.state.epoch, loop.state.step, loop.state.lr_steps = epoch, step, len(loop.lr)
        loop.writer.write(save_checkpoint, loop.train_step.cell, self.run_dir.epoch_checkpoint(epoch, step),
                          append_dict={**loop.state.checkpoint_fields(), **self.extras})
        loop.writer.write(self.run_dir.rotate, self.keep_max)

    def on_step_end(self, loop, epoch, step):
        global_step = (epoch - 1) * loop.steps_per_epoch + step
        due = self.every_steps and global_step % self.every_steps == 0 and step < loop.steps_per_epoch
        if due or loop.save_now:
            self.save(loop, epoch, step)

    def on_epoch_end(self, loop, epoch):
        if epoch % self.every_epochs == 0 or epoch == loop.n_epochs or loop.save_now:
            self.save(loop, epoch, loop.steps_per_epoch)
