"""eval_onnx.py's logic: the eval dataset, run_evaluation and the metric of eval.py, with an
onnxruntime predictor instead of the MindSpore network."""
import logging

from src.errors import UserError

log = logging.getLogger("resnet3d")


def evaluate_with(predict, cfg, prefix):
    """Run ``predict`` over cfg's validation windows; print the accuracy and count lines; save outputs."""
    from src.data.datasets import create_eval_dataset
    from src.evaluation import run_evaluation, save_eval_outputs

    data = create_eval_dataset(cfg, subset=cfg.get("eval_subset", "validation"))
    result, acc = run_evaluation(predict, data, ignore=bool(cfg.ignore))
    print(result.report())
    if str(cfg.get("result_path", "")):
        paths = save_eval_outputs(cfg.result_path, prefix, result, acc, data[1])
        log.info("per-clip / per-video results: %s", ", ".join(str(p) for p in paths))
    return result


def evaluate_onnx(cfg):
    from src.deploy.backends import onnx_predictor

    if not str(cfg.onnx_path):
        raise UserError("--onnx_path is required: the ONNX model to evaluate (python export.py --file_format=ONNX)")
    predict = onnx_predictor(cfg.onnx_path, cfg.device_target)
    return evaluate_with(predict, cfg, f"{cfg.get('dataset', 'ucf101')}_eval_onnx")
