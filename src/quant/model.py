"""The INT8 network as a plain description, and the INT8 model file (issue 30; read by src/models/quantized.py and
by the QDQ ONNX export).

Scheme. Every convolution of the folded inference network (BatchNorm folded into weights + bias by
src.models.folding) is quantized; the FC head stays float32.

- weights: per output channel c, symmetric s8: w_scale[c] = max|w_c| / 127 (a zero channel: 1),
  w_q = rint(w / w_scale[c]) in [-127, 127] (grouped convolutions the same, per output channel);
- bias: float32 (folded), added in float32;
- activations: per tensor, zero point 0; a ReLU's output u8 (q = clamp(rint(x / s), 0, 255)), any other tensor
  (the clips, a pre-activation block's sum, a downsample's output) s8 (q = clamp(rint(x / s), -128, 127));
  rint rounds half to even;
- one unit, per output element of channel c: acc = sum(q_x * w_q) (int32);
  y = in_scale * w_scale[c] * acc + bias[c]; y += res_scale * q_res (a residual); y = max(y, 0) (relu);
  out = saturate(rint(y / out_scale)) as u8 / s8, or y itself for the last unit (f32);
- the first unit reads the float32 clips NCDHW and quantizes them to s8 with its in_scale; between units the
  integers are channels-last NDHWC; the stem's max-pool pools the u8 integers (its scale is the stem's);
  a type-A shortcut strides and zero-pads the integers (scale kept); the last unit writes float32, the
  network averages over D, H, W and runs the float32 head.
- pre-activation family: a block's first BN + ReLU is a per-channel affine on the dequantized block input,
  quantized to u8 (:class:`~src.quant.wiring.PreActivation`); its block sums are s8.

Description (:func:`load_quantized` returns it). A :class:`QuantNetwork`:

- ``units``: {name: :class:`~src.quant.wiring.QuantUnit`} in execution order; a unit has name, weight_q (int8
  [O, I/groups, kd, kh, kw]), weight_scale (float32 [O]), bias (float32 [O]), stride, padding (symmetric, per
  D/H/W), groups, in_dtype ('f32' for the first unit: it quantizes the clips to s8 with in_scale; else 'u8' /
  's8'), in_scale, out_dtype ('u8' / 's8'; 'f32' for the last unit, out_scale 1), out_scale, relu, residual
  (None or (dtype, scale) of the added tensor), plus source / residual_source: the names of the tensors it reads
  and adds ('input' = the clips; else a unit's or a pre-activation's name);
- ``stem``: the stem units' names (one; R(2+1)D two); ``max_pool``: whether the 3x3x3 / stride 2 / padding 1
  max-pool follows the stem;
- ``layers``: four tuples of :class:`~src.quant.wiring.QuantBlock` (name, units: body in order, the last adds
  the shortcut; shortcut: None = identity, a unit name = its downsample convolution, or
  :class:`~src.quant.wiring.ZeroPadShortcut`; pre: a PreActivation or None; source: the block input);
- ``head``: (weight float32 [classes, C], bias float32 [classes]), or None for a feature extractor;
- ``activations``: {tensor: (dtype, scale)}; ``record``: the file's :class:`~src.record.ModelRecord`.

File. A MindSpore checkpoint (CRC-checked) holding, per unit, ``<unit>.weight_q`` (int8),
``<unit>.weight_scale`` and ``<unit>.bias`` (float32); per pre-activation block ``<block>.pre.scale`` and
``<block>.pre.shift``; ``fc.weight`` / ``fc.bias``; ``architecture`` (the family, as every checkpoint); and
``model_settings``: the record (src.record) with ``precision: "int8"`` and an ``int8`` section: ``method``
(the calibration method, in words), ``videos`` and ``clips`` (the calibration set) and ``activations``
({tensor: [dtype, scale]} for ``input``, every unit and every pre-activation). The geometry is not stored: it
follows from the record's architecture (the reader builds that network and walks it, src.quant.wiring). The
record is validated when read, and the reader checks that every tensor the architecture needs is there with
its shape and type and that every activation's dtype is the one the wiring gives: a damaged or tampered
file is one error naming it.
"""
from dataclasses import dataclass, replace

import numpy as np

from src.errors import UserError
from src.quant.wiring import INPUT, PreActivation, QuantBlock, QuantUnit, ZeroPadShortcut, tensor_dtypes
from src.quant.wiring import walk, with_scales
from src.record import ModelRecord, RecordError

__all__ = ["QuantNetwork", "QuantUnit", "QuantBlock", "PreActivation", "ZeroPadShortcut", "INPUT",
           "quantize_weights", "quantized_network", "save_quantized", "load_quantized", "entries_of"]


@dataclass(frozen=True)
class QuantNetwork:
    units: dict
    stem: tuple
    max_pool: bool
    layers: tuple
    head: tuple | None
    activations: dict
    record: ModelRecord | None = None

    def ordered_units(self):
        return list(self.units.values())

    def pre_activations(self):
        return [block.pre for layer in self.layers for block in layer if block.pre is not None]


def quantize_weights(weight):
    """(w_q int8, w_scale float32 [O]) of float weight [O, ...]: symmetric per output channel, [-127, 127]."""
    flat = np.abs(weight.reshape(weight.shape[0], -1)).max(axis=1)
    scale = np.where(flat > 0, flat / 127.0, 1.0).astype(np.float32)
    q = np.rint(weight / scale.reshape(-1, *([1] * (weight.ndim - 1))))
    return np.clip(q, -127, 127).astype(np.int8), scale


def quantized_network(units, stem, max_pool, layers, head, activations, record=None):
    """The QuantNetwork of walked float ``units`` (src.quant.wiring.walk) and calibrated ``activations``
    ({tensor: (dtype, scale)}): weights quantized, every scale filled in."""
    quantized = {}
    for name, unit in units.items():
        weight_q, weight_scale = quantize_weights(unit.weight)
        quantized[name] = replace(unit, weight_q=weight_q, weight_scale=weight_scale, weight=None)
    quantized, layers = with_scales(quantized, layers, activations)
    return QuantNetwork(quantized, stem, max_pool, layers, head, dict(activations), record)


def entries_of(network):
    """{entry name: numpy array} of the file's tensors."""
    entries = {}
    for name, unit in network.units.items():
        entries.update({f"{name}.weight_q": unit.weight_q, f"{name}.weight_scale": unit.weight_scale,
                        f"{name}.bias": unit.bias})
    for pre in network.pre_activations():
        entries.update({f"{pre.name}.scale": pre.scale, f"{pre.name}.shift": pre.shift})
    if network.head is not None:
        entries.update({"fc.weight": network.head[0], "fc.bias": network.head[1]})
    return entries


def save_quantized(network, path, architecture):
    """Write ``network`` (its record says precision int8) to ``path`` atomically (a temporary name, renamed)."""
    import mindspore as ms

    from src.weights.checkpoint import ARCHITECTURE_KEY, save_checkpoint
    from src.weights.model_file import KEY

    params = [{"name": k, "data": ms.Tensor(v)} for k, v in entries_of(network).items()]
    return save_checkpoint(params, path, append_dict={ARCHITECTURE_KEY: architecture,
                                                      KEY: network.record.to_json()})


def _check_tensor(path, name, value, shape, dtype):
    if value is None:
        raise UserError(f"{path}: INT8 entry {name} is missing: the file is damaged or was not written by "
                        f"quantize.py; quantize the model again")
    if tuple(value.shape) != tuple(shape) or value.dtype != dtype:
        raise UserError(f"{path}: INT8 entry {name} is {value.dtype} {tuple(value.shape)}, the architecture needs "
                        f"{np.dtype(dtype)} {tuple(shape)}: the file was altered; quantize the model again")
    if dtype == np.float32 and not np.isfinite(value).all():
        raise UserError(f"{path}: INT8 entry {name} holds non-finite values: the file is damaged; quantize the "
                        f"model again")


def _check_activations(path, record, units, layers):
    """Every tensor of the wiring has an activation of the wiring's dtype, and there is no other."""
    expected = tensor_dtypes(units, layers)
    recorded = dict(record.int8["activations"])
    for tensor, dtype in expected.items():
        if tensor not in recorded:
            raise RecordError(f"{path}: its model record's int8 activations lack {tensor}: the file was altered; "
                              f"quantize the model again")
        if recorded[tensor][0] != dtype:
            raise RecordError(f"{path}: its model record's int8 activation {tensor} is {recorded[tensor][0]} but "
                              f"the network makes it {dtype}: the file was altered; quantize the model again")
    extra = sorted(set(recorded) - set(expected))
    if extra:
        raise RecordError(f"{path}: its model record's int8 activations name {extra[0]}, which this architecture "
                          f"does not have: the file was altered; quantize the model again")
    return {k: (v[0], float(v[1])) for k, v in recorded.items()}


def load_quantized(path, record=None):
    """The :class:`QuantNetwork` of the INT8 file ``path`` (``record``: its record when already read)."""
    from src.models.factory import build_model
    from src.weights.checkpoint import read_checkpoint
    from src.weights.model_file import read_record

    record = record or read_record(path)
    if record is None or record.precision != "int8":
        raise UserError(f"{path} is not an INT8 model file (its record does not say precision int8): write one "
                        f"with quantize.py")
    skeleton = build_model(record.spec(), conv_impl="native")  # the geometry; its random weights are not used
    units, stem, max_pool, layers, head = walk(skeleton)
    activations = _check_activations(path, record, units, layers)
    entries = {k: v.asnumpy() for k, v in read_checkpoint(path).items() if not isinstance(v, str)}
    loaded = {}
    for name, unit in units.items():
        values = [entries.get(f"{name}.{part}") for part in ("weight_q", "weight_scale", "bias")]
        _check_tensor(path, f"{name}.weight_q", values[0], unit.weight.shape, np.int8)
        for part, value in zip(("weight_scale", "bias"), values[1:]):
            _check_tensor(path, f"{name}.{part}", value, unit.bias.shape, np.float32)
        loaded[name] = replace(unit, weight_q=values[0], weight_scale=values[1], bias=values[2], weight=None)
    layers = tuple(tuple(_loaded_block(path, block, entries) for block in layer) for layer in layers)
    if head is not None:
        _check_tensor(path, "fc.weight", entries.get("fc.weight"), head[0].shape, np.float32)
        _check_tensor(path, "fc.bias", entries.get("fc.bias"), head[1].shape, np.float32)
        head = (entries["fc.weight"], entries["fc.bias"])
    loaded, layers = with_scales(loaded, layers, activations)
    return QuantNetwork(loaded, stem, max_pool, layers, head, activations, record)


def _loaded_block(path, block, entries):
    if block.pre is None:
        return block
    pre = block.pre
    for part in ("scale", "shift"):
        _check_tensor(path, f"{pre.name}.{part}", entries.get(f"{pre.name}.{part}"), pre.scale.shape, np.float32)
    return replace(block, pre=replace(pre, scale=entries[f"{pre.name}.scale"], shift=entries[f"{pre.name}.shift"]))
