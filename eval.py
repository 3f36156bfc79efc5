"""Evaluate a checkpoint: sliding windows over every validation video, video score = mean clip softmax.

python eval.py --config_path=./ucf101_config.yaml --video_path=... --annotation_path=... \
    --result_path=... --inference_ckpt_path=best.ckpt
python eval.py ... --onnx_path=resnet3d.onnx    # ONNX Runtime instead: the same as eval_onnx.py
Prints the original's line, e.g. `clip: 88.8% top-1: 92.7%  top-5: 99.3%`, then the video counts; the
output is also appended to result_path/<dataset>_eval.log.
"""
import sys

from src.cli import run_main
from src.config import EVAL_SECTIONS, load_config


def _main(argv):
    from src.errors import UserError
    from src.eval.evaluate import evaluate_checkpoint, evaluate_onnx, onnx_evaluation_device
    from src.weights.model_file import use_model
    from src.logs import log_file
    from src.rundir import RunDir
    from src.runtime import setup_runtime

    cfg = load_config(argv, prog="eval.py", sections=EVAL_SECTIONS)
    if cfg.onnx_path and cfg.inference_ckpt_path:
        raise UserError("pass one model: --inference_ckpt_path=X.ckpt or --onnx_path=X.onnx (ONNX Runtime), not both")
    # the model's own settings (architecture, clip, classes, views) replace the config file's
    option = "onnx_path" if cfg.onnx_path else "inference_ckpt_path"
    cfg, model = use_model(cfg, cfg[option], option)
    runtime = None if cfg.onnx_path else setup_runtime(cfg.placement, cfg.runtime, cfg.seed, cfg.infer_precision,
                                                       distributed=False)
    run_dir = RunDir(cfg.result_path, cfg.dataset)
    sections = evaluation_sections(cfg)
    with log_file(run_dir.eval_log, f"eval.py {' '.join(sys.argv[1:] if argv is None else argv)}"):
        if cfg.onnx_path:
            device = onnx_evaluation_device(cfg.device_target, "device_target" in cfg.explicit)
            # the input pipeline only
            setup_runtime(cfg.placement, cfg.runtime, cfg.seed, "fp32", device_target="CPU", distributed=False)
            evaluate_onnx(cfg.onnx_path, device, **sections)
        else:
            evaluate_checkpoint(model.path, runtime, **sections)
    return 0


def evaluation_sections(cfg):
    """What src.eval.evaluate reads of the config: its sections and two of the runtime keys."""
    return dict(paths=cfg.paths, data=cfg.data, arch=cfg.arch, evaluation=cfg.evaluation,
                batch_size=cfg.eval_batch_size, num_workers=cfg.num_workers)


def main(argv=None):
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
