"""Ascend-310 step 1: write every evaluation clip as a .bin file plus a manifest.

    python preprocess.py --config_path=ucf101_config.yaml --video_path=JPG --annotation_path=JSON \
        [--output_path=preprocess_Result]
"""
import sys

from src.cli import run_main
from src.config import load_config
from src.config_keys import Key


OPTIONS = {"output_path": Key("preprocess_Result", "Folder the clips (.bin) and their manifest are written to."),
           "mindir_path": Key("", "The exported model: its settings (<model>.json beside it) give the clip size "
                                  "and length.")}


def _main(argv):
    # the original passed --batch_size=1 here: accepted, clips are always written one per file
    cfg = load_config(argv, prog="preprocess.py", extra=OPTIONS,
                      sections=("placement", "runtime", "paths", "arch", "data", "evaluation"))
    from src.deploy.infer310 import write_clips
    from src.runtime import setup_runtime
    from src.weights.model_file import use_model

    if cfg.mindir_path:  # the clip size and length the model was trained with (its <model>.json)
        cfg, _ = use_model(cfg, cfg.mindir_path, "mindir_path")

    # the input pipeline only
    setup_runtime(cfg.placement, cfg.runtime, cfg.seed, "fp32", device_target="CPU", distributed=False)
    write_clips(cfg.output_path, paths=cfg.paths, data=cfg.data, arch=cfg.arch, evaluation=cfg.evaluation,
                batch_size=cfg.eval_batch_size, num_workers=cfg.num_workers)
    return 0


def main(argv=None):
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
