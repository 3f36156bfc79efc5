"""An INT8 model file (src.quant.model) as an ONNX model in QDQ form: export.py --file_format=ONNX on a file whose
record says precision int8.

The graph is the float graph of the folded network, NCDHW, with the INT8 scheme written as QuantizeLinear /
DequantizeLinear (opset 13, zero points 0):

- the clips: QuantizeLinear to int8 with the first unit's in_scale, then DequantizeLinear;
- each unit: Conv over its input's dequantized value with its int8 weights behind a per-channel DequantizeLinear
  (axis 0, its weight scales) and its folded bias behind a per-channel DequantizeLinear of int32 in accumulator
  units (in_scale * w_scale[c]: the form ONNX Runtime fuses; rounding moves the bias by at most half a unit,
  which tips an output integer only where it lies that close to a rounding tie); the residual's dequantized
  value added (Add); Relu; then QuantizeLinear / DequantizeLinear of its output with its out_scale (uint8 after a
  ReLU, int8 otherwise); the last unit's output stays float32;
- the stem's max-pool pools the dequantized stem output (max commutes with the quantization) and is quantized
  again with the same scale, so that the next convolution's input is a DequantizeLinear; a type-A shortcut
  is a strided Slice and a zero Pad of the channels; a pre-activation block's BN + ReLU is Mul, Add, Relu and the
  u8 QuantizeLinear / DequantizeLinear;
- the head: GlobalAveragePool, Flatten, the float32 Gemm, Softmax (probabilities, as the FP32 export).

Runtimes fuse DequantizeLinear -> Conv -> QuantizeLinear into integer convolutions: ONNX Runtime 1.20 makes
QLinearConv of every unit whose Conv output is quantized; a unit that adds the shortcut (Conv -> Add -> Relu ->
QuantizeLinear: the Conv's own output is float32 in the scheme) stays a float Conv over dequantized integers there,
while OpenVINO runs every convolution in INT8 (the add fused).
"""
from dataclasses import replace
from pathlib import Path

import numpy as np

from src.errors import UserError
from src.logs import out
from src.quant.wiring import INPUT, ZeroPadShortcut, last_unit

OPSET = 13
# max |probability difference| between ONNX Runtime on the export and our INT8 network (its native emulation, with
# the bias rounded as the file holds it) on a random clip: the same integers but where float summation order tips a
# rounding tie (the FP32 export: 1e-4); a mis-written graph is off by far more
TOLERANCE = 1e-3
INPUT_NAME = "x"
OUTPUT_NAME = "probabilities"
ZERO_POINT_TYPES = {"u8": np.uint8, "s8": np.int8}


class _Graph:
    """Nodes and initializers of the graph being built; every name is unique and says what it is."""

    def __init__(self):
        self.nodes, self.initializers = [], []

    def const(self, name, array):
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, name, **attrs):
        from onnx import helper

        self.nodes.append(helper.make_node(op, list(inputs), [name], name=name, **attrs))
        return name

    def qdq(self, x, scale, dtype, name):
        """The dequantized value of ``x`` quantized per tensor with ``scale`` to ``dtype`` (u8 / s8), zero point 0."""
        s = self.const(f"{name}.scale", np.float32(scale))
        z = self.const(f"{name}.zero_point", ZERO_POINT_TYPES[dtype](0))
        return self.node("DequantizeLinear", [self.node("QuantizeLinear", [x, s, z], f"{name}.q"), s, z],
                         f"{name}.dq")


def _conv(g, unit, x):
    """The float Conv of ``unit`` over ``x`` (a dequantized tensor), its int8 weights dequantized per channel."""
    out_channels = unit.weight_q.shape[0]
    w = g.const(f"{unit.name}.weight_q", unit.weight_q.astype(np.int8))
    ws = g.const(f"{unit.name}.weight_scale", unit.weight_scale.astype(np.float32))
    wz = g.const(f"{unit.name}.weight_zero_point", np.zeros(out_channels, np.int8))
    weight = g.node("DequantizeLinear", [w, ws, wz], f"{unit.name}.weight", axis=0)
    bias = _bias(g, unit)
    return g.node("Conv", [x, weight, bias], f"{unit.name}.conv", kernel_shape=list(unit.weight_q.shape[2:]),
                  strides=[int(s) for s in unit.stride], pads=[int(p) for p in unit.padding] * 2,
                  dilations=[1, 1, 1], group=int(unit.groups))


def bias_in_accumulator_units(unit):
    """(bias_q int32, scale float32 [O]) of ``unit``'s folded float32 bias as ONNX Runtime's QLinearConv takes it:
    in accumulator units in_scale * w_scale[c], rounded half to even (an error of at most half a unit)."""
    scale = (np.float32(unit.in_scale) * unit.weight_scale).astype(np.float32)
    q = np.rint(unit.bias.astype(np.float64) / scale)
    if np.abs(q).max(initial=0) > np.iinfo(np.int32).max:
        raise UserError(f"{unit.name}: its bias exceeds int32 in accumulator units (in_scale {unit.in_scale:.3g}): "
                        f"the INT8 file's scales are damaged; quantize the model again")
    return q.astype(np.int32), scale


def with_rounded_bias(network):
    """``network`` with every unit's bias as the QDQ model holds it (bias_in_accumulator_units, dequantized)."""
    units = {}
    for name, unit in network.units.items():
        q, scale = bias_in_accumulator_units(unit)
        units[name] = replace(unit, bias=(q.astype(np.float64) * scale).astype(np.float32))
    return replace(network, units=units)


def _bias(g, unit):
    """The folded bias behind a per-channel DequantizeLinear of int32 (what runtimes fuse into an integer
    convolution; a float32 bias keeps ONNX Runtime's Conv in float)."""
    q, scale = bias_in_accumulator_units(unit)
    b = g.const(f"{unit.name}.bias_q", q)
    bs = g.const(f"{unit.name}.bias_scale", scale)
    bz = g.const(f"{unit.name}.bias_zero_point", np.zeros(len(scale), np.int32))
    return g.node("DequantizeLinear", [b, bs, bz], f"{unit.name}.bias", axis=0)


def _unit(g, unit, x, residual):
    """The unit's output: its dequantized integers, or the float value of the network's last unit."""
    y = _conv(g, unit, x)
    if residual is not None:
        y = g.node("Add", [y, residual], f"{unit.name}.add")
    if unit.relu:
        y = g.node("Relu", [y], f"{unit.name}.relu")
    if unit.out_dtype == "f32":
        return y
    return g.qdq(y, unit.out_scale, unit.out_dtype, f"{unit.name}.out")


def _zero_pad(g, name, x, shortcut, channels):
    """Type-A shortcut of ``x`` (``channels`` channels): every ``stride``-th element in D, H, W, zero channels
    appended up to ``out_planes``."""
    s = int(shortcut.stride)
    sliced = g.node("Slice", [x, g.const(f"{name}.starts", np.zeros(3, np.int64)),
                              g.const(f"{name}.ends", np.full(3, np.iinfo(np.int64).max, np.int64)),
                              g.const(f"{name}.axes", np.array([2, 3, 4], np.int64)),
                              g.const(f"{name}.steps", np.full(3, s, np.int64))], f"{name}.slice")
    pads = np.zeros(10, np.int64)
    pads[6] = int(shortcut.out_planes) - channels  # after the channels (axis 1's end)
    return g.node("Pad", [sliced, g.const(f"{name}.pads", pads)], f"{name}.pad")


def _pre_activation(g, pre, x):
    """A pre-activation block's first BN + ReLU on the block input, quantized to u8."""
    shape = (1, -1, 1, 1, 1)
    y = g.node("Mul", [x, g.const(f"{pre.name}.scale", pre.scale.astype(np.float32).reshape(shape))],
               f"{pre.name}.mul")
    y = g.node("Add", [y, g.const(f"{pre.name}.shift", pre.shift.astype(np.float32).reshape(shape))],
               f"{pre.name}.add")
    return g.qdq(g.node("Relu", [y], f"{pre.name}.relu"), pre.out_scale, "u8", f"{pre.name}.out")


def _block(g, network, block, values):
    """Adds ``block``'s nodes; ``values`` maps tensor names to their graph values (the dequantized integers)."""
    units = network.units
    if block.pre is not None:
        values[block.pre.name] = _pre_activation(g, block.pre, values[block.pre.source])
    shortcut = block.shortcut
    if isinstance(shortcut, str):  # a downsample unit
        values[shortcut] = _unit(g, units[shortcut], values[units[shortcut].source], None)
    for name in block.units:
        unit = units[name]
        residual = values[unit.residual_source] if unit.residual_source else None
        if residual is not None and isinstance(shortcut, ZeroPadShortcut):
            channels = _channels(network, block.source)
            residual = _zero_pad(g, f"{block.name}.shortcut", residual, shortcut, channels)
        values[name] = _unit(g, unit, values[unit.source], residual)


def _channels(network, tensor):
    """The channels of ``tensor`` (a unit's or a pre-activation's output)."""
    if tensor in network.units:
        return int(network.units[tensor].weight_q.shape[0])
    pre = next(p for p in network.pre_activations() if p.name == tensor)
    return int(pre.scale.shape[0])


def _head(g, network, features):
    if network.head is None:
        raise UserError("the INT8 model has no classification head (a feature extractor): the QDQ export writes "
                        "classifiers; export the FP32 model instead")
    weight, bias = network.head
    pooled = g.node("Flatten", [g.node("GlobalAveragePool", [features], "head.pool")], "head.flatten", axis=1)
    logits = g.node("Gemm", [pooled, g.const("fc.weight", weight.astype(np.float32)),
                             g.const("fc.bias", bias.astype(np.float32))], "fc", transB=1)
    return g.node("Softmax", [logits], OUTPUT_NAME, axis=1)


def qdq_model(network, shape):
    """The QDQ ONNX ModelProto of ``network`` (src.quant.model.QuantNetwork) for float32 clips of ``shape``
    [N, C, T, H, W]; its output is the softmax probabilities [N, classes]."""
    from onnx import TensorProto, checker, helper

    g = _Graph()
    first = network.units[network.stem[0]]
    values = {INPUT: g.qdq(INPUT_NAME, first.in_scale, "s8", "input")}
    for name in network.stem:
        unit = network.units[name]
        values[name] = _unit(g, unit, values[unit.source], None)
    if network.max_pool:
        stem = network.units[network.stem[-1]]
        pooled = g.node("MaxPool", [values[stem.name]], "stem.max_pool", kernel_shape=[3, 3, 3], strides=[2, 2, 2],
                        pads=[1] * 6)
        values[stem.name] = g.qdq(pooled, stem.out_scale, stem.out_dtype, "stem.max_pool.out")
    for layer in network.layers:
        for block in layer:
            _block(g, network, block, values)
    _head(g, network, values[last_unit(network.units)])
    classes = int(network.head[0].shape[0])
    graph = helper.make_graph(
        g.nodes, "resnet3d_int8_qdq",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [int(shape[0]), classes])],
        g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="resnet3d-mindspore")
    model.ir_version = 8  # opset 13's; ONNX Runtime 1.20 reads up to 10
    checker.check_model(model)
    return model


def export_int8(model, export, record, path):
    """export.py on an INT8 file ``model`` (a ModelSource): the QDQ ONNX model of its network at ``path``, with
    ``record`` (the exported file's record) saying precision int8 and the file's calibration; written under a
    temporary name, run by ONNX Runtime and compared with the INT8 network (the native emulation of
    src/models/quantized.py) on a random clip before it gets its final name. Returns (path, max difference)."""
    from src.quant.model import load_quantized

    if export.file_format != "ONNX":
        raise UserError(f"{model.path} is an INT8 model file (quantize.py): it exports to ONNX in QDQ form "
                        f"(--file_format=ONNX); {export.file_format} stays FP32: export the FP32 checkpoint it was "
                        f"quantized from (docs/int8.md: MindSpore Lite's converter quantizes for the Ascend 310)")
    network = load_quantized(model.path, model.record)
    arch = record.spec()
    shape = (export.export_batch_size, arch.n_input_channels, record.config["sample_duration"],
             record.config["sample_size"], record.config["sample_size"])
    exported = replace(record, precision="int8", int8=model.record.int8)
    exported.validate()
    diff = write_qdq(network, shape, Path(path), exported)
    out.info(f"exported {model.path} -> {path} (ONNX, INT8 in QDQ form: {len(network.units)} quantized "
             f"convolutions, input {'x'.join(str(d) for d in shape)}, {arch.n_classes} classes, softmax output)")
    return Path(path), diff


def write_qdq(network, shape, path, record=None, seed=0):
    """Write the QDQ model of ``network`` to ``path`` atomically, checked against the INT8 network; ``record``
    goes into its metadata. Returns the max abs difference of the probabilities."""
    import onnx

    from src.atomic import commit, make_dirs, scratch_dir
    from src.weights.model_file import write_onnx_record

    model = qdq_model(network, shape)
    make_dirs(path.parent)
    with scratch_dir(path) as work:
        tmp = work / f"{path.stem}.onnx"
        try:
            onnx.save(model, str(tmp))
        except OSError as err:
            raise UserError(f"cannot write {path} ({err.strerror or err}): check free space and permissions of "
                            f"{path.parent}; nothing was written") from None
        diff, moved = qdq_parity(network, tmp, shape, seed)
        out.info(f"parity ONNX (QDQ): max abs difference to the INT8 network {diff:.3g} (its bias as the file "
                 f"holds it, int32 in accumulator units; batch {shape[0]}, tolerance {TOLERANCE:g}); to the INT8 "
                 f"network's float32 bias {moved:.3g}")
        if not diff <= TOLERANCE:
            raise UserError(f"the QDQ ONNX export differs from the INT8 network by {diff:.3g} (> {TOLERANCE:g}); "
                            f"nothing was written to {path}")
        if record is not None:
            write_onnx_record(tmp, record)
        commit(tmp, path)
    return diff


def qdq_parity(network, path, shape, seed=0):
    """(max |ONNX Runtime(QDQ file at ``path``) - INT8 network with the file's int32 bias|, the same against the
    INT8 network's own float32 bias) over the probabilities of a random clip."""
    import mindspore as ms

    from src.inference.predictors import onnx_predictor, runtime_errors
    from src.metrics import softmax
    from src.models.quantized import int8_network

    clip = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    try:
        got = onnx_predictor(path)(clip)
    except runtime_errors() as err:
        raise UserError(f"the QDQ ONNX export cannot be run ({str(err).splitlines()[0][:200]}); nothing was "
                        f"written") from None
    diffs = []
    for reference in (with_rounded_bias(network), network):
        probabilities = softmax(int8_network(reference, "native")(ms.Tensor(clip)).asnumpy())
        diffs.append(float(np.abs(got - probabilities).max()))
    return tuple(diffs)
