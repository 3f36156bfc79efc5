"""Quantize a trained model to INT8 (post-training, calibrated on training clips): docs/int8.md.

python quantize.py --ckpt_file=best.ckpt --video_path=... [--annotation_path=...] [--calibration_videos=32] \
    --output_path=model_int8.ckpt [--dump_calibration=DIR] [--config_path=... model keys]
BatchNorm is folded, every convolution gets s8 weights per output channel, every activation a u8 (after ReLU)
or s8 scale chosen on the calibration clips; the FC head stays FP32. Prints the calibration summary and the
FP32 vs INT8 agreement on the calibration clips; eval.py / predict.py / extract_features.py take the INT8 file
like any checkpoint. --dump_calibration writes the clips as MindSpore Lite's converter reads calibration data.
"""
import sys

from src.cli import run_main
from src.config import EVAL_SECTIONS, load_config
from src.config_keys import Key, at_least

OPTIONS = {
    "calibration_videos": Key(32, "Training videos to calibrate on (the first N in a fixed-seed order; every "
                                  "evaluation view of each). docs/int8.md: 32 gave the best agreement on the demo.",
                              check=at_least(1)),
    "output_path": Key("", "The INT8 model file to write (.ckpt)."),
    "dump_calibration": Key("", "Also write the calibration clips into this folder for MindSpore Lite's converter "
                                "(DIR/x/<i>.bin, raw float32 [1, C, T, H, W] each; docs/int8.md)."),
}


def _main(argv):
    cfg = load_config(argv, prog="quantize.py", extra=OPTIONS, sections=(*EVAL_SECTIONS, "export"))
    from pathlib import Path

    from src.errors import UserError
    from src.weights.model_file import use_model

    if not cfg.output_path:
        raise UserError("--output_path is required: the INT8 model file to write, e.g. --output_path=model_int8.ckpt")
    if Path(cfg.output_path).is_dir():
        raise UserError(f"--output_path={cfg.output_path} is a folder: pass a file name, e.g. model_int8.ckpt")
    if not cfg.video_path:
        raise UserError("--video_path is required: the videos the model was trained on (calibration takes "
                        "training clips)")
    cfg, model = use_model(cfg, cfg.ckpt_file, "ckpt_file")
    if model.kind != "checkpoint":
        raise UserError(f"--ckpt_file={model.path}: quantize.py takes the FP32 checkpoint (.ckpt) or a result "
                        f"folder, not an exported {model.kind.upper()} model")
    if model.record is not None and model.record.precision == "int8":
        raise UserError(f"--ckpt_file={model.path} is already an INT8 model file: pass the FP32 checkpoint")
    return _quantize(cfg, model)


def _quantize(cfg, model):
    from src.inference.predictors import checkpoint_network
    from src.logs import out
    from src.models.families import architecture_name
    from src.quant.run import calibration_clips, calibration_entries, dump_calibration, quantize_model
    from src.runtime import setup_runtime
    from src.weights.model_file import record_of

    runtime = setup_runtime(cfg.placement, cfg.runtime, cfg.seed, "fp32", mode="PYNATIVE", distributed=False)
    entries, class_names = calibration_entries(cfg.paths, cfg.data, cfg.calibration_videos)
    batches = calibration_clips(entries, class_names, cfg.data, cfg.evaluation, cfg.eval_batch_size, cfg.num_workers)
    net = checkpoint_network(cfg.arch, model.path)
    record = model.record or record_of(cfg, class_names)
    quantize_model(net, record, batches, len(entries), cfg.output_path, architecture_name(cfg.arch),
                   runtime.conv_impl)
    if cfg.dump_calibration:
        folder, count = dump_calibration(batches, cfg.dump_calibration)
        out.info(f"calibration clips for MindSpore Lite's converter: {count} files in {folder} (calibrate_path="
                 f"<input name>:{folder.resolve()}, calibrate_size={count}, input_type=BIN; docs/int8.md)")
    return 0


def main(argv=None):
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
