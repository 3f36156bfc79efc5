"""Fine-tune (or train from scratch) a 3D ResNet on UCF101 / HMDB51 frames.

python train.py --config_path=./ucf101_config.yaml --video_path=... --annotation_path=... \
    --result_path=... [--pretrain_path=pretrained.ckpt] [--resume=auto] [--key=value ...]
Everything printed is also appended to result_path/train_<dataset>.log.
"""
import sys

from src.cli import run_main
from src.config import load_config


def _main(argv):
    from src.logs import log_file
    from src.rundir import RunDir
    from src.runtime import setup_runtime

    cfg = load_config(argv, prog="train.py")
    runtime = setup_runtime(cfg.placement, cfg.runtime, cfg.seed, cfg.infer_precision)
    run_dir = RunDir(cfg.result_path, cfg.dataset)
    if not runtime.is_main:  # rank 0 alone writes into the result folder
        return _train(_prepared(cfg, write=False), runtime, run_dir)
    run_dir.make()
    with log_file(run_dir.train_log, f"train.py {' '.join(sys.argv[1:] if argv is None else argv)}"):
        return _train(_prepared(cfg), runtime, run_dir)


def _prepared(cfg, write=True):
    """Pretrained weights bring their architecture (the head follows the data); a plain folder of <class>/<video>
    (no --annotation_path) gets its split, made once into the run folder. Both said in the run's log."""
    from src.data.folder_split import annotation_of_folder
    from src.weights.model_file import adopt_architecture

    cfg = adopt_architecture(cfg, cfg.pretrain_path)
    return cfg.replace(annotation_path=annotation_of_folder(cfg.video_path, cfg.annotation_path, cfg.result_path,
                                                            cfg.dataset, cfg.val_fraction, write=write))


def _train(cfg, runtime, run_dir):
    from src.logs import out
    from src.train.trainer import Stopped, train

    try:
        summary = train(cfg, runtime, run_dir)
    except Stopped as stop:
        return stop.code
    if summary["best_top1"] >= 0 and runtime.is_main:  # the run's last line, once: the best epoch's three figures
        best = run_dir.read_best_metrics() or {}
        figures = best.get("line") or f"top-1: {100 * summary['best_top1']:.1f}%"
        out.info(f"best epoch {summary['best_epoch']}: {figures} ({run_dir.best_ckpt})")
    return 0


def main(argv=None):
    return run_main(_main, argv)


if __name__ == "__main__":
    from src.train.signals import deliver_sigint_to_python

    deliver_sigint_to_python()  # before mindspore is imported: Ctrl-C reads SIGINT, not SIGTERM
    sys.exit(main())
