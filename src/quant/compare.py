"""FP32 vs INT8 on the evaluation clips: top-1 agreement and max |logit difference| (docs/int8.md's table).

python -m src.quant.compare --config_path=demo_config.yaml --video_path=... --annotation_path=... \
    --ckpt_file=best.ckpt --int8_path=model_int8.ckpt
Also the mean |logit difference|. Both networks see the same clips (eval.py's views of eval_subset): the FP32
checkpoint through its inference network, the INT8 file through its INT8 network. Prints one line.
"""
import sys

import numpy as np

from src.config import EVAL_SECTIONS, load_config
from src.config_keys import Key

OPTIONS = {"int8_path": Key("", "The INT8 model file (quantize.py) to compare with --ckpt_file.")}


def compare(fp32_net, int8_net, batches):
    """(top-1 agreement %, max |logit diff|, mean |logit diff|, clips) of two networks over ``batches`` of clips."""
    import mindspore as ms

    agree, worst, total, count = 0, 0.0, 0.0, 0
    for clips in batches:
        a, b = fp32_net(ms.Tensor(clips)).asnumpy(), int8_net(ms.Tensor(clips)).asnumpy()
        agree += int((a.argmax(1) == b.argmax(1)).sum())
        worst = max(worst, float(np.abs(a - b).max()))
        total += float(np.abs(a - b).mean(axis=1).sum())
        count += len(clips)
    return 100.0 * agree / max(count, 1), worst, total / max(count, 1), count


def _main(argv):
    from src.data.datasets import eval_dataset_of
    from src.errors import UserError
    from src.logs import out
    from src.models.factory import build_model
    from src.models.inference import inference_network
    from src.models.quantized import int8_network
    from src.quant.model import load_quantized
    from src.runtime import setup_runtime
    from src.weights.checkpoint import load_strict
    from src.weights.model_file import read_record, use_model

    cfg = load_config(argv, prog="python -m src.quant.compare", extra=OPTIONS, sections=(*EVAL_SECTIONS, "export"))
    cfg, model = use_model(cfg, cfg.ckpt_file, "ckpt_file")
    record = read_record(cfg.int8_path) if cfg.int8_path else None
    if record is None or record.precision != "int8":
        raise UserError("--int8_path: pass the INT8 model file (quantize.py) to compare with --ckpt_file")
    runtime = setup_runtime(cfg.placement, cfg.runtime, cfg.seed, "fp32", distributed=False)
    net = build_model(cfg.arch, conv_impl=runtime.conv_impl)
    load_strict(net, model.path)
    fp32 = inference_network(net.set_train(False), runtime.conv_impl)
    int8 = int8_network(load_quantized(cfg.int8_path, record), runtime.conv_impl)
    dataset, _ = eval_dataset_of(cfg.paths, cfg.data, cfg.arch, cfg.evaluation, cfg.eval_batch_size, cfg.num_workers)
    batches = (b["clip"] for b in dataset.create_dict_iterator(num_epochs=1, output_numpy=True))
    agree, worst, mean, count = compare(fp32, int8, batches)
    out.info(f"FP32 vs INT8 on {count} {cfg.eval_subset} clips: top-1 agreement {agree:.2f}%, max |logit diff| "
             f"{worst:.4g}, mean |logit diff| {mean:.4g}")
    return 0


def main(argv=None):
    from src.cli import run_main

    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
