"""Progress you can watch: TensorBoard events in the run folder (read back by TensorBoard's own reader), a
progress bar in place of the step lines on a terminal (the lines still in the log), the last line's three
figures, and the disk the checkpoints need (said; refused on a disk that cannot hold them)."""
import logging

import pytest

import train as train_script
from src.logs import RankWriter, log_file
from src.rundir import RunDir
from src.train.logger import TrainLogger
from src.train.tensorboard import crc32c


def test_crc32c_matches_the_published_check_value():
    assert crc32c(b"123456789") == 0xE3069283  # RFC 3720's CRC-32C check value


def test_a_run_writes_tensorboard_events_and_ends_with_its_three_figures(tiny_args, tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = tiny_args + ["--n_epochs=2", "--batch_size=8", "--eval_in_training=True"]
    assert train_script.main(args) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    result = tmp_path / "result"
    assert printed[-1].startswith("best epoch ") and " clip: " in printed[-1] and " top-5: " in printed[-1]
    assert printed[-1].endswith(f"({result / 'best.ckpt'})")
    assert any(line.startswith("checkpoints: up to 20 + best.ckpt x ") for line in printed)
    events = EventAccumulator(str(result))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/data_wait_ms", "val/clip", "val/top1", "val/top5"} <= tags
    losses = events.Scalars("train/loss")
    assert [e.step for e in losses] == [1, 2, 3, 4, 5, 6] and all(e.value > 0 for e in losses)
    assert [e.step for e in events.Scalars("val/top1")] == [3, 6]


def test_the_progress_bar_stands_for_the_step_lines_which_stay_in_the_log(tmp_path, capsys):
    run_dir = RunDir(tmp_path, "synthetic").make()
    logger = TrainLogger(run_dir, RankWriter(0), steps_per_epoch=3, n_epochs=1, progress=True)
    with log_file(run_dir.train_log, "test"):
        for step in (1, 2, 3):
            logger.step(1, step, step, 1.5 / step, 0.01, 0.1, 0.01)
    logger.close()
    captured = capsys.readouterr()
    assert "loss is" not in captured.out, "the console shows the bar, not the step lines"
    assert "epoch 1/1" in captured.err and "/3 [" in captured.err and "step/s" in captured.err
    log = run_dir.train_log.read_text()
    assert "epoch: 1 step: 1, loss is 1.5" in log and "epoch: 1 step: 3, loss is 0.5" in log


def test_a_disk_that_cannot_hold_the_checkpoints_is_refused_at_start(tiny_args, mount_tmpfs, capsys):
    small = mount_tmpfs("size=256k")
    args = [a for a in tiny_args if not a.startswith("--result_path")] + [f"--result_path={small / 'run'}",
                                                                            "--batch_size=8"]
    assert train_script.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert [e for e in err if e.startswith("error:")] == err[-1:]
    assert err[-1].startswith("error: the checkpoints of this run need ") and "lower --keep_checkpoint_max" in err[-1]
    assert not list((small / "run").glob("*.ckpt"))


@pytest.fixture(autouse=True)
def _info_logs():
    logging.getLogger().setLevel(logging.INFO)
