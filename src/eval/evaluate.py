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
from src.runtime import onnx_device

log = logging.getLogger("resnet3d")


def evaluate(predict, tag, *, paths, data, arch, evaluation, batch_size, num_workers):
    """Run ``predict`` over the annotation's ``evaluation.eval_subset`` (src.data.datasets.eval_dataset_of: the
    config's ``paths``, ``data``, ``arch`` and ``evaluation`` sections, eval_batch_size and num_workers); print
    the lines; save ``<dataset>_<tag>_*`` in ``paths.result_path`` (none when it is empty)."""
    videos = eval_dataset_of(paths, data, arch, evaluation, batch_size, num_workers)
    result, acc = run_evaluation(predict, videos, ignore=evaluation.ignore)
    out.info(result.report())
    if paths.result_path:
        files = save_eval_outputs(RunDir(paths.result_path, data.dataset), tag, result, acc, videos[1])
        log.info("per-clip / per-video results: %s", ", ".join(str(p) for p in files))
    return result


def evaluate_checkpoint(ckpt, runtime, **sections):
    """eval.py: load the checkpoint ``ckpt`` strictly and evaluate it; ``sections``: :func:`evaluate`'s."""
    predict = checkpoint_predictor(sections["arch"], ckpt, runtime.conv_impl, runtime.infer_precision)
    log.info("evaluating %s (%s)", ckpt, runtime.describe())
    return evaluate(predict, "eval", **sections)


def onnx_evaluation_device(device_target, explicit=False):
    """Where ONNX Runtime evaluates (src.runtime.onnx_device), its provider checked: called before any work.
    MindSpore then runs only the input pipeline, on the CPU (the entry script sets it up)."""
    device = onnx_device(device_target, explicit)
    onnx_providers(device)
    return device


def evaluate_onnx(onnx_path, device, **sections):
    """eval_onnx.py (and eval.py --onnx_path): the same evaluation with onnxruntime running ``onnx_path`` on
    ``device`` (onnx_evaluation_device); ``sections``: :func:`evaluate`'s."""
    if not onnx_path:
        raise UserError("--onnx_path is required: the ONNX model to evaluate (python export.py --file_format=ONNX)")
    predict = onnx_predictor(onnx_path, device, clip_shape(sections["arch"], sections["data"]))
    return evaluate(predict, "eval_onnx", **sections)
