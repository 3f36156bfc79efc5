"""The predictors: ``predict(clips float32 [b,3,T,H,W]) -> probabilities [b, n_classes]`` over a MindSpore
network, a checkpoint (through its inference network; an INT8 file written by quantize.py, whose record says
precision int8, through the INT8 network of src/models/quantized.py), an ONNX model (ONNX Runtime) or a MINDIR
(MindSpore on the host). eval, deploy, predict and in-training evaluation all take theirs from here; MindSpore Lite's
(Ascend only) is src.deploy.lite's.

Exported graphs already end in softmax; the network and checkpoint predictors apply it.
"""
import logging
from pathlib import Path

import mindspore as ms
import mindspore.nn as nn
import numpy as np
from mindspore.train import mind_ir_pb2

from src.errors import UserError
from src.metrics import softmax
from src.models.inference import inference_network
from src.models.factory import build_model
from src.weights.checkpoint import load_strict

log = logging.getLogger("resnet3d")


def mindspore_predictor(net):
    """predict() over a MindSpore network that outputs logits (softmax applied here)."""
    net.set_train(False)

    def predict(clips):
        return softmax(net(ms.Tensor(clips)).asnumpy())

    return predict


def clip_shape(arch, data):
    """(C, T, H, W) of the clips the data pipeline makes: the architecture's channels, the data's clip."""
    return (arch.n_input_channels, data.sample_duration, data.sample_size, data.sample_size)


def _require_file(path, what, hint):
    path = Path(str(path)).expanduser()
    if not path.is_file():
        raise UserError(f"{what} {path} not found: {hint}")
    return path


def onnx_providers(device_target="CPU"):
    """onnxruntime providers for a device_target: CPU always, CUDA first for GPU when available."""
    import onnxruntime as ort  # optional (ONNX users only), and slow to import: loaded when asked for

    if device_target not in ("CPU", "GPU"):
        raise UserError(f"ONNX models run on CPU or GPU (onnxruntime), not {device_target}: "
                        f"pass --device_target=CPU or --device_target=GPU")
    available = ort.get_available_providers()
    wanted = ("CUDAExecutionProvider", "CPUExecutionProvider") if device_target == "GPU" else ("CPUExecutionProvider",)
    if device_target == "GPU" and "CUDAExecutionProvider" not in available:
        log.warning("onnxruntime has no CUDA provider here (%s): running on the CPU", ", ".join(available))
    return [p for p in wanted if p in available]


def onnx_session(path, device_target="CPU"):
    """An onnxruntime session for ``device_target`` (see onnx_providers)."""
    import onnxruntime as ort  # optional: see onnx_providers

    providers = onnx_providers(device_target)
    path = _require_file(path, "ONNX model", "export one with python export.py --file_format=ONNX")
    try:
        return ort.InferenceSession(str(path), providers=providers)
    except runtime_errors() as err:  # onnxruntime's own types for unreadable or invalid files
        raise UserError(f"{path} is not a loadable ONNX model ({str(err).splitlines()[0][:200]})") from None


def batch_size_of(shape):
    """Fixed batch size of an exported input shape, or None when it is dynamic."""
    first = shape[0] if shape else None
    return first if isinstance(first, int) and first > 0 else None


def _fixed_batch(run, batch):
    """Run a graph whose batch size is fixed (export_batch_size) on any number of clips: split the
    clips into chunks of ``batch`` and pad the last chunk with copies of its first clip."""

    def predict(clips):
        clips = np.ascontiguousarray(clips, dtype=np.float32)
        if batch is None or len(clips) == batch:
            return run(clips)
        outs = []
        for start in range(0, len(clips), batch):
            chunk = clips[start:start + batch]
            n = len(chunk)
            if n < batch:
                chunk = np.concatenate([chunk, np.repeat(chunk[:1], batch - n, axis=0)])
            outs.append(run(chunk)[:n])
        return np.concatenate(outs)

    return predict


def check_clip_shape(path, model_shape, clip_shape):
    """An exported graph takes one clip shape: a config with another sample_size / sample_duration is an error."""
    if model_shape is None:
        return
    got = tuple(d if isinstance(d, int) and d > 0 else None for d in model_shape[1:])
    if len(got) != len(clip_shape) or any(g is not None and g != c for g, c in zip(got, clip_shape)):
        raise UserError(f"{path} takes clips of {'x'.join(str(d) for d in got)} but the config gives "
                        f"{'x'.join(str(d) for d in clip_shape)} (channels x sample_duration x sample_size^2): "
                        f"pass the --sample_size / --sample_duration it was exported with")


def onnx_predictor(path, device_target="CPU", clip_shape=None):
    """predict() over an ONNX model; ``clip_shape`` (C, T, H, W) is checked against the model's input."""
    session = onnx_session(path, device_target)
    inp = session.get_inputs()[0]
    if clip_shape is not None:
        check_clip_shape(path, inp.shape, clip_shape)

    def run(clips):
        return np.asarray(session.run(None, {inp.name: clips})[0], dtype=np.float32)

    return _fixed_batch(run, batch_size_of(inp.shape))


def load_mindir(path):
    """A MINDIR as a callable nn.GraphCell."""
    path = _require_file(path, "MINDIR model", "export one with python export.py --file_format=MINDIR")
    try:
        return nn.GraphCell(ms.load(str(path)))
    except (RuntimeError, ValueError, TypeError) as err:
        raise UserError(f"{path} is not a loadable MINDIR ({str(err).splitlines()[0][:200]})") from None


def mindir_input_shape(path):
    """Input shape a MINDIR was exported with (its graph's first input), or None (said: the clip shape is then
    not checked before running, and batches run one by one) when this protobuf reader cannot read it."""
    from google.protobuf.message import DecodeError

    model = mind_ir_pb2.ModelProto()
    try:
        model.ParseFromString(Path(path).read_bytes())
        return tuple(int(d) for d in model.graph.input[0].tensor[0].dims)
    except (DecodeError, IndexError, ValueError) as err:
        log.warning("%s: its input shape cannot be read here (%s): the clip shape is checked when it runs",
                    path, str(err).splitlines()[0][:120] if str(err) else type(err).__name__)
        return None


def runtime_errors():
    """What running or loading a graph raises: MindSpore's RuntimeError / ValueError / TypeError, and
    onnxruntime's own exception types (which derive from Exception only)."""
    errors = (RuntimeError, ValueError, TypeError)
    try:
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_state
    except ImportError:
        return errors
    names = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoSuchFile", "NotImplemented",
             "RuntimeException", "EPFail")
    return errors + tuple(getattr(ort_state, name) for name in names if hasattr(ort_state, name))


def mindir_predictor(path, clip_shape=None):
    """predict() over a MINDIR run by MindSpore in this process; ``clip_shape`` as for onnx_predictor."""
    cell = load_mindir(path)
    shape = mindir_input_shape(path)
    if clip_shape is not None:
        check_clip_shape(path, shape, clip_shape)
    batch = batch_size_of(shape) if shape else None

    def run(clips):
        return np.asarray(cell(ms.Tensor(clips)).asnumpy(), dtype=np.float32)

    return _fixed_batch(run, batch)


def int8_record(ckpt_file):
    """The record of ``ckpt_file`` when it is an INT8 model file (quantize.py), else None."""
    from src.weights.model_file import read_record

    record = read_record(ckpt_file, "checkpoint")
    return record if record is not None and record.precision == "int8" else None


def int8_inference_network(ckpt_file, record, conv_impl="auto", features=False):
    """The INT8 inference network of the INT8 file ``ckpt_file`` (``record``: its record); ``features``: without
    its head (the pooled features)."""
    from dataclasses import replace

    from src.models.quantized import int8_network
    from src.quant.model import load_quantized

    network = load_quantized(ckpt_file, record)
    return int8_network(replace(network, head=None) if features else network, conv_impl)


def checkpoint_network(arch, ckpt_file, conv_impl="native"):
    """The network of ``arch`` (a ModelSpec) with every parameter strictly loaded from ``ckpt_file``. An INT8 file
    has no float network: one error saying to use the FP32 checkpoint it was quantized from."""
    if int8_record(ckpt_file) is not None:
        raise UserError(f"{ckpt_file} is an INT8 model file (quantize.py): this needs the float network; pass the "
                        f"FP32 checkpoint it was quantized from")
    net = build_model(arch, conv_impl=conv_impl)
    load_strict(net, ckpt_file)
    net.set_train(False)
    return net


def checkpoint_predictor(arch, ckpt_file, conv_impl="native", precision="fp32"):
    """predict() of a checkpoint through its inference network (BatchNorm folded; on CPU with the fast op,
    bias, residual add and ReLU fused into each convolution; ``precision`` fp32 or bf16). An INT8 file runs its
    INT8 network whatever ``precision`` says (said once when bf16 was asked for)."""
    record = int8_record(ckpt_file)
    if record is not None:
        if precision != "fp32":
            log.info("%s is an INT8 model file: it runs in INT8 (infer_precision=%s not used)", ckpt_file, precision)
        return mindspore_predictor(int8_inference_network(ckpt_file, record, conv_impl))
    net = checkpoint_network(arch, ckpt_file, conv_impl)
    return mindspore_predictor(inference_network(net, conv_impl, precision))
