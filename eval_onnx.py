"""Evaluate an exported ONNX model on the validation split, exactly as eval.py evaluates a checkpoint.

    python eval_onnx.py --config_path=ucf101_config.yaml --video_path=JPG --annotation_path=JSON \
        --onnx_path=MODEL.onnx [--device_target=CPU|GPU]
"""
import sys

from src.cli import run_main
from src.config import EVAL_SECTIONS, load_config


def _main(argv):
    cfg = load_config(argv, prog="eval_onnx.py", sections=EVAL_SECTIONS)
    from src.eval.evaluate import evaluate_onnx, onnx_evaluation_device
    from src.runtime import setup_runtime
    from src.weights.model_file import use_model

    if cfg.onnx_path:  # the model's own settings (input shape, classes, views) replace the config file's
        cfg, _ = use_model(cfg, cfg.onnx_path, "onnx_path")

    device = onnx_evaluation_device(cfg.device_target, "device_target" in cfg.explicit)  # before any work
    # the input pipeline only
    setup_runtime(cfg.placement, cfg.runtime, cfg.seed, "fp32", device_target="CPU", distributed=False)
    evaluate_onnx(cfg.onnx_path, device, paths=cfg.paths, data=cfg.data, arch=cfg.arch, evaluation=cfg.evaluation,
                  batch_size=cfg.eval_batch_size, num_workers=cfg.num_workers)
    return 0


def main(argv=None):
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
