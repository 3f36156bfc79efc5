"""eval.py's work: load a checkpoint strictly, run the shared sliding-window evaluation, save results."""
import logging
from pathlib import Path

from src.context import setup_from_config
from src.data.datasets import create_eval_dataset
from src.errors import UserError
from src.evaluation import mindspore_predictor, run_evaluation, save_eval_outputs
from src.models.resnet3d import model_from_config
from src.train.checkpoints import BEST_NAME, CheckpointManager
from src.weights.checkpoint import load_strict

log = logging.getLogger("resnet3d")


def resolve_inference_checkpoint(cfg):
    """inference_ckpt_path, or for a directory its best.ckpt (else its latest epoch checkpoint)."""
    path = Path(cfg.inference_ckpt_path) if cfg.inference_ckpt_path else None
    if path is None:
        raise UserError("--inference_ckpt_path is empty: pass the checkpoint to evaluate (e.g. result_path/best.ckpt)")
    if path.is_dir():
        if (path / BEST_NAME).is_file():
            return path / BEST_NAME
        found = CheckpointManager(path, cfg.dataset, 1).epoch_checkpoints()
        if not found:
            raise UserError(f"--inference_ckpt_path {path} is a folder without best.ckpt or resnet3d-*.ckpt")
        return found[-1][1]
    return path


def evaluate_checkpoint(cfg):
    runtime = setup_from_config(cfg)
    ckpt = resolve_inference_checkpoint(cfg)
    net = model_from_config(cfg, conv_impl=runtime.conv_impl)
    load_strict(net, ckpt)
    log.info("evaluating %s (%s)", ckpt, runtime.describe())
    eval_data = create_eval_dataset(cfg, cfg.eval_subset)
    result, acc = run_evaluation(mindspore_predictor(net), eval_data, bool(cfg.ignore))
    paths = save_eval_outputs(cfg.result_path, f"{cfg.dataset}_eval", result, acc, eval_data[1])
    log.info("results: %s", ", ".join(str(p) for p in paths))
    return result
