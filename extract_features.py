"""Pooled features (the input of fc, mean over the evaluation views) of every video of a subset.

    python extract_features.py --config_path=ucf101_config.yaml --video_path=JPG --annotation_path=JSON \
        --result_path=OUT (--ckpt_file=best.ckpt | --pretrain_path=pretrained.ckpt) [--subset=training]
Writes OUT/<dataset>_<subset>_features.npy (float32 [videos, features]) and _features.csv (row, video, label);
everything printed is also appended to OUT/<dataset>_features.log.
"""
import sys

from src.cli import run_main
from src.config import EVAL_SECTIONS, load_config


def _main(argv):
    cfg = load_config(argv, prog="extract_features.py", aliases={"subset": "eval_subset"},
                      sections=(*EVAL_SECTIONS, "export"))
    from src.deploy.features import extract_features
    from src.logs import log_file
    from src.rundir import RunDir
    from src.runtime import setup_runtime
    from src.weights.model_file import adopt_architecture, use_model

    model = None
    if cfg.ckpt_file:  # the model's own settings replace the config file's
        cfg, model = use_model(cfg, cfg.ckpt_file, "ckpt_file")
    else:  # pretrained weights bring their architecture
        cfg = adopt_architecture(cfg, cfg.pretrain_path)

    log = RunDir(cfg.result_path, cfg.dataset).file(f"{cfg.dataset}_features.log")
    with log_file(log, f"extract_features.py {' '.join(sys.argv[1:] if argv is None else argv)}"):
        runtime = setup_runtime(cfg.placement, cfg.runtime, cfg.seed, cfg.infer_precision, distributed=False)
        extract_features(runtime, model.path if model else "", paths=cfg.paths, data=cfg.data, arch=cfg.arch,
                         evaluation=cfg.evaluation, batch_size=cfg.eval_batch_size, num_workers=cfg.num_workers)
    return 0


def main(argv=None):
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
