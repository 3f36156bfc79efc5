"""quantize.py's work: calibration clips from the training subset, calibration, the INT8 file, the summary lines,
the FP32 vs INT8 agreement, and (``--dump_calibration``) the clips as MindSpore Lite's converter reads them.

Calibration clips: the first ``calibration_videos`` videos of the training subset in a fixed-seed order (the same
every run), each cut into evaluation's views (the config's inference_stride / test_clips / test_crops: the clips
the model will see), by the evaluation data pipeline.
"""
import logging
from pathlib import Path

import numpy as np

from src.errors import UserError
from src.logs import out
from src.quant.calibrate import METHOD, calibrate
from src.quant.model import quantized_network, save_quantized
from src.quant.wiring import INPUT, walk
from src.record import ModelRecord

log = logging.getLogger("resnet3d")
ORDER_SEED = 0  # the calibration videos: the first N of the training subset in this seed's order


def calibration_entries(paths, data, n_videos):
    """(entries, class names) of the calibration videos: the first ``n_videos`` of the training subset in a
    fixed-seed order."""
    from src.data.datasets import load_annotation

    entries, class_names = load_annotation(paths.annotation_path, paths.video_path, "training", data.input_format)
    if not entries:
        raise UserError(f"{paths.annotation_path}: no training videos to calibrate on: pass the annotation (or plain "
                        f"folder) the model was trained with")
    order = np.random.default_rng(ORDER_SEED).permutation(len(entries))
    return [entries[i] for i in order[:n_videos]], class_names


def calibration_clips(entries, class_names, data, evaluation, batch_size, num_workers):
    """The evaluation views of ``entries`` as a list of float32 batches [b, C, T, H, W]."""
    from src.data.datasets import create_eval_dataset
    from src.data.presets import ClipSpec

    dataset, _ = create_eval_dataset(entries, class_names, ClipSpec.of(data, evaluation), batch_size, num_workers)
    return [batch["clip"] for batch in dataset.create_dict_iterator(num_epochs=1, output_numpy=True)]


def stage_of(tensor):
    return "input" if tensor == INPUT else tensor.split(".")[0]


def scale_summary(activations):
    """One text per stage: its tensors' dtypes and scale ranges, e.g. 'layer1 u8 0.012..0.034 (4), s8 0.05 (1)'."""
    stages = {}
    for tensor, (dtype, scale) in activations.items():
        if dtype != "f32":
            stages.setdefault(stage_of(tensor), {}).setdefault(dtype, []).append(scale)
    parts = []
    for stage, kinds in stages.items():
        shown = ", ".join(f"{dtype} {min(v):.4g}" + (f"..{max(v):.4g}" if len(v) > 1 else "") + f" ({len(v)})"
                          for dtype, v in sorted(kinds.items()))
        parts.append(f"{stage} {shown}")
    return parts


def agreement(fp32, int8):
    """(top-1 agreement %, max |logit difference|) of two [clips, classes] arrays."""
    return 100.0 * float(np.mean(fp32.argmax(1) == int8.argmax(1))), float(np.abs(fp32 - int8).max())


def int8_logits(network, batches, conv_impl):
    import mindspore as ms

    from src.models.quantized import int8_network

    net = int8_network(network, conv_impl)
    return np.concatenate([net(ms.Tensor(batch)).asnumpy() for batch in batches])


def dump_calibration(batches, folder, input_name="x"):
    """The clips as the MindSpore Lite converter's calibration input: ``folder/<input_name>/<i>.bin``, one raw
    float32 clip [1, C, T, H, W] per file. Returns (the input's folder, the number of files)."""
    from src.atomic import atomic_output

    target = Path(folder) / input_name
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    for batch in batches:
        for clip in batch:
            with atomic_output(target / f"{count}.bin") as tmp:
                np.ascontiguousarray(clip[None], np.float32).tofile(tmp)
            count += 1
    return target, count


def quantize_model(net, record, batches, n_videos, output_path, architecture, conv_impl):
    """Calibrate eval-mode ``net`` (an FP32 checkpoint's network) on ``batches``, write the INT8 file to
    ``output_path`` (atomically) and print the summary and the FP32 vs INT8 agreement. Returns the network
    description (src.quant.model.QuantNetwork)."""
    from src.ops.fused_conv3d import status

    walked = walk(net)
    activations, winners, fp32 = calibrate(walked, batches, fused=conv_impl != "native" and status()[0])
    n_clips = int(sum(len(b) for b in batches))
    int8 = {"method": METHOD, "videos": int(n_videos), "clips": n_clips,
            "activations": {k: [dtype, scale] for k, (dtype, scale) in activations.items()}}
    int8_record = ModelRecord.create(dict(record.config), record.class_names, "int8", str(output_path),
                                     record.split, int8)
    network = quantized_network(*walked, activations, int8_record)
    counts = {kind: list(winners.values()).count(kind) for kind in ("max", "fraction", "percentile")}
    out.info(f"calibration: {n_videos} training videos (the first {n_videos} in a fixed-seed order), {n_clips} clips "
             f"(evaluation's views), {len(network.units)} convolutions quantized (s8 weights per output channel)")
    out.info(f"activation scales: {METHOD}; thresholds chosen: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for line in scale_summary(activations):
        out.info(f"  scales {line}")
    agree, diff = agreement(fp32, int8_logits(network, batches, conv_impl))
    out.info(f"FP32 vs INT8 on the {n_clips} calibration clips: top-1 agreement {agree:.1f}%, max |logit diff| "
             f"{diff:.4g}")
    save_quantized(network, output_path, architecture)
    out.info(f"INT8 model -> {output_path} (precision int8; eval.py / predict.py / extract_features.py take it like "
             f"any checkpoint)")
    return network
