"""Training logs: the original's console lines, plus lr, data-wait time and clips/s, a CSV of the
curves and a PNG plot (loss, lr, validation accuracy), all in result_path."""
import csv
import logging
import sys

from tqdm import tqdm

from src.atomic import atomic_output
from src.errors import UserError
from src.logs import RankWriter, out
from src.train.tensorboard import EventWriter
from src.rundir import CURVES_CSV, CURVES_PNG, EPOCHS_CSV
STEP_FIELDS = ["epoch", "step", "global_step", "loss", "lr", "step_time_ms", "data_wait_ms"]
EPOCH_FIELDS = ["epoch", "mean_loss", "epoch_time_s", "clips_per_s", "data_wait_ms", "overflow_steps", "val_clip",
                "val_top1", "val_top5"]


class TrainLogger:
    """``writer``: the run's src.logs.RankWriter (lines and files from rank 0 only). ``resume_step`` = global
    steps already done: on resume the CSVs keep the rows up to there, and ``resumed_losses`` holds the losses
    of the interrupted epoch's finished steps. ``progress``: a progress bar per epoch (rate, time left) on the
    terminal in place of the step lines, which still go to the log (default: when stderr is a terminal);
    ``steps_per_epoch`` / ``n_epochs`` size it. TensorBoard events go to the run folder (rank 0)."""

    def __init__(self, run_dir, writer: RankWriter, resume_step=0, resume_epoch=0, steps_per_epoch=0, n_epochs=0,
                 progress=None):
        self.dir = run_dir.path
        self.writer = writer
        self.resumed_losses = []
        self.shape = (steps_per_epoch, n_epochs)
        self.progress = writer.is_main and bool(steps_per_epoch) and (sys.stderr.isatty() if progress is None
                                                                       else progress)
        self.bar, self.board, self.global_step = None, None, resume_step
        if writer.is_main:
            self.board = EventWriter(self.dir, warn=logging.getLogger("resnet3d").warning)
            run_dir.make()
            steps = self._open(CURVES_CSV, STEP_FIELDS, lambda r: int(r["global_step"]) <= resume_step)
            self._open(EPOCHS_CSV, EPOCH_FIELDS, lambda r: int(r["epoch"]) <= resume_epoch)
            self.resumed_losses = [float(r["loss"]) for r in steps if int(r["epoch"]) > resume_epoch]

    def _open(self, name, fields, keep):
        """Start the CSV afresh, or (on resume) keep only the rows ``keep`` accepts; returns those rows."""
        path = self.dir / name
        rows = []
        if path.is_file():
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if keep(r)]
        with atomic_output(path) as tmp:
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
        return rows

    def _append(self, name, fields, row):
        self.writer.write(_append_row, self.dir / name, fields, row)

    def say(self, line):
        self.writer.say(line)

    def step(self, epoch, step, global_step, loss, lr, step_time, data_wait):
        line = f"epoch: {epoch} step: {step}, loss is {loss:.7g}"
        if self.progress:
            self._advance(epoch, step, loss)
            self.writer.write(out.info, line, extra={"log_only": True})
        else:
            self.say(line)
        self.global_step = global_step
        if self.board:
            self.board.scalars(global_step, {"train/loss": loss, "train/lr": lr, "train/data_wait_ms": data_wait * 1e3,
                                             "train/step_time_ms": step_time * 1e3})
        self._append(CURVES_CSV, STEP_FIELDS, dict(epoch=epoch, step=step, global_step=global_step, loss=f"{loss:.6g}",
                                                   lr=f"{lr:.6g}", step_time_ms=f"{step_time * 1e3:.2f}",
                                                   data_wait_ms=f"{data_wait * 1e3:.2f}"))

    def _advance(self, epoch, step, loss):
        """The epoch's bar: made at its first step, one tick per step, the loss beside it."""
        if self.bar is None:
            spe, n_epochs = self.shape
            self.bar = tqdm(total=spe, initial=step - 1, desc=f"epoch {epoch}/{n_epochs}", unit="step",
                            file=sys.stderr, leave=False, dynamic_ncols=True)
        self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.board:
            self.board.close()

    def epoch(self, epoch, steps, losses, epoch_time, clips, data_wait, lr, val=None, overflows=0):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        per_step = epoch_time / max(steps, 1)
        self.say(f"epoch time: {epoch_time * 1e3:.3f} ms, per step time: {per_step * 1e3:.3f} ms")
        mean_loss = sum(losses) / max(len(losses), 1)
        line = (f"epoch {epoch}: mean loss {mean_loss:.4f}, lr {lr:.6g}, {clips / max(epoch_time, 1e-9):.1f} clips/s, "
                f"data wait {data_wait / max(steps, 1) * 1e3:.1f} ms/step "
                f"({100 * data_wait / max(epoch_time, 1e-9):.0f}%)")
        if overflows:
            line += f", {overflows} overflow step(s) skipped"
        if val is not None:
            line += f", val {val.line()}"
        self.say(line)
        self._append(EPOCHS_CSV, EPOCH_FIELDS, dict(
            epoch=epoch, mean_loss=f"{mean_loss:.6g}", epoch_time_s=f"{epoch_time:.3f}",
            clips_per_s=f"{clips / max(epoch_time, 1e-9):.2f}", data_wait_ms=f"{data_wait / max(steps, 1) * 1e3:.2f}",
            overflow_steps=overflows,
            val_clip="" if val is None else f"{val.clip:.4f}", val_top1="" if val is None else f"{val.top1:.4f}",
            val_top5="" if val is None else f"{val.top5:.4f}"))
        self.writer.write(self.plot)
        if self.board:
            scalars = {"epoch/mean_loss": mean_loss, "epoch/clips_per_s": clips / max(epoch_time, 1e-9)}
            if val is not None:
                scalars.update({"val/clip": val.clip, "val/top1": val.top1, "val/top5": val.top5})
            self.board.scalars(self.global_step, scalars)

    def plot(self):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        with open(self.dir / CURVES_CSV, newline="") as f:
            steps = list(csv.DictReader(f))
        with open(self.dir / EPOCHS_CSV, newline="") as f:
            epochs = list(csv.DictReader(f))
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        x = [int(r["global_step"]) for r in steps]
        axes[0].plot(x, [float(r["loss"]) for r in steps], lw=0.8)
        axes[0].set(title="training loss", xlabel="global step")
        axes[1].plot(x, [float(r["lr"]) for r in steps])
        axes[1].set(title="learning rate", xlabel="global step")
        val = [(int(r["epoch"]), float(r["val_top1"]), float(r["val_clip"])) for r in epochs if r["val_top1"]]
        if val:
            axes[2].plot([v[0] for v in val], [100 * v[1] for v in val], "o-", label="video top-1")
            axes[2].plot([v[0] for v in val], [100 * v[2] for v in val], "s--", label="clip")
            axes[2].legend()
        axes[2].set(title="validation accuracy (%)", xlabel="epoch")
        fig.tight_layout()
        with atomic_output(self.dir / CURVES_PNG) as tmp:
            fig.savefig(tmp, dpi=80)
        plt.close(fig)


def _append_row(path, fields, row):
    try:
        with open(path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=fields).writerow(row)
    except OSError as err:
        raise UserError(f"cannot write {path} ({err.strerror}): check free space and permissions; resume with "
                        f"--resume=auto once fixed") from None
