"""Evaluating a model on a dataset split: eval.py (a checkpoint) and eval_onnx.py (an ONNX model) differ
only in the predictor (src.inference.predictors); the dataset, the loop (src.inference.loop), the metric,
the printed lines and the result files are one.

The accuracy lines are printed before any result file is written, so a full or read-only result folder
cannot lose an evaluation.
"""
import logging

from src.data.datasets import eval_dataset_of
from src.inference.loop import run_evaluation
from src.inference.predictors import checkpoint_predictor, clip_shape, onnx_predictor, onnx_providers
from src.errors import UserError
from src.eval.outputs import save_eval_outputs
from src.logs import out
from src.rundir import RunDir
from src.runtime import onnx_device, setup_runtime

log = logging.getLogger("resnet3d")


def evaluate(predict, cfg, tag):
    """Run ``predict`` over cfg's eval_subset; print the lines; save ``<dataset>_<tag>_*`` in result_path."""
    data = eval_dataset_of(cfg, cfg.eval_subset)
    result, acc = run_evaluation(predict, data, ignore=cfg.ignore)
    out.info(result.report())
    if cfg.result_path:
        paths = save_eval_outputs(RunDir(cfg.result_path, cfg.dataset), tag, result, acc, data[1])
        log.info("per-clip / per-video results: %s", ", ".join(str(p) for p in paths))
    return result


def evaluate_checkpoint(cfg, runtime, ckpt):
    """eval.py: load the checkpoint ``ckpt`` strictly and evaluate it."""
    predict = checkpoint_predictor(cfg.arch, ckpt, runtime.conv_impl, runtime.infer_precision)
    log.info("evaluating %s (%s)", ckpt, runtime.describe())
    return evaluate(predict, cfg, "eval")


def evaluate_onnx(cfg):
    """eval_onnx.py (and eval.py --onnx_path): the same evaluation with onnxruntime running cfg.onnx_path.
    MindSpore runs only the input pipeline, on the CPU."""
    device = onnx_device(cfg.device_target, "device_target" in cfg.explicit)  # fail before any work
    onnx_providers(device)
    setup_runtime(cfg, device_target="CPU", distributed=False, infer_precision="fp32")
    if not cfg.onnx_path:
        raise UserError("--onnx_path is required: the ONNX model to evaluate (python export.py --file_format=ONNX)")
    predict = onnx_predictor(cfg.onnx_path, device, clip_shape(cfg.arch, cfg.data))
    return evaluate(predict, cfg, "eval_onnx")
