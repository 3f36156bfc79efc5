"""The wiring of a network of src.models.families as the INT8 description sees it (src.quant.model): its folded
convolution units in execution order, each naming the tensor it reads and the tensor it adds, the stem, the
max-pool, the blocks (their shortcut and, for the pre-activation family, their first BN + ReLU) and the head.

:func:`walk` reads an eval-mode network: the units carry its folded float32 weights (BatchNorm folded by
src.models.folding, the same code as the FP32 / BF16 inference network); calibration runs them, and the INT8
file's reader walks a network built from the record's architecture to learn the geometry of every unit.

Tensor names: ``input`` (the clips), a unit's name (its output), a pre-activation's name (its output). The
max-pool and a type-A shortcut keep their input's integers and scale, so they name no tensor of their own.
Which integer type a tensor has follows from the wiring (:func:`tensor_dtypes`).
"""
from dataclasses import dataclass, replace

import numpy as np

from src.errors import UserError
from src.models.folding import bn_terms, conv_geometry, fold_batch_norm
from src.models.resnet3d import ShortcutA

INPUT = "input"


@dataclass(frozen=True)
class QuantUnit:
    """One folded convolution unit (the contract's fields first; see src.quant.model)."""
    name: str
    weight_q: np.ndarray | None  # int8 [O, I/groups, kd, kh, kw]
    weight_scale: np.ndarray | None  # float32 [O]
    bias: np.ndarray  # float32 [O], BatchNorm folded
    stride: tuple
    padding: tuple
    groups: int
    in_dtype: str  # 'f32' (the clips, quantized to s8 with in_scale by the unit) | 'u8' | 's8'
    in_scale: float
    out_dtype: str  # 'u8' (after ReLU) | 's8' | 'f32' (the network's last unit)
    out_scale: float  # 1.0 for 'f32'
    relu: bool
    residual: tuple | None  # None, or (dtype, scale) of the tensor added before the ReLU
    source: str = INPUT  # the tensor it reads
    residual_source: str = ""  # the tensor it adds ("" when none)
    weight: np.ndarray | None = None  # float32 folded weight: calibration only, never in the file


@dataclass(frozen=True)
class PreActivation:
    """A pre-activation block's first BatchNorm + ReLU as a per-channel affine: out = relu(x * scale + shift),
    x dequantized from ``in_dtype`` / ``in_scale``, out quantized to u8 with ``out_scale``."""
    name: str
    scale: np.ndarray  # float32 [C]
    shift: np.ndarray  # float32 [C]
    source: str
    in_dtype: str = ""
    in_scale: float = 0.0
    out_dtype: str = "u8"
    out_scale: float = 0.0


@dataclass(frozen=True)
class ZeroPadShortcut:
    """Type-A shortcut: the block input taken every ``stride`` in D, H, W, channels zero-padded to
    ``out_planes`` (its integers and scale unchanged)."""
    out_planes: int
    stride: int


@dataclass(frozen=True)
class QuantBlock:
    """A residual block: ``pre`` (pre-activation family) or None; ``units`` the body in order, the last adding
    the shortcut; ``shortcut`` None (identity), a unit's name (its downsample convolution) or a
    :class:`ZeroPadShortcut`; ``source`` the block input's tensor."""
    name: str
    units: tuple
    shortcut: object
    pre: PreActivation | None
    source: str


def _unit(name, conv, bn, source, relu, residual_source=""):
    weight, bias = fold_batch_norm(conv, bn)
    stride, padding = conv_geometry(conv)
    return QuantUnit(name, None, None, bias, tuple(stride), tuple(padding), int(getattr(conv, "group", 1)),
                     "", 0.0, "", 0.0, bool(relu), None, source, residual_source, weight)


def _shortcut(block_name, downsample, source, units):
    if downsample is None:
        return None, source
    if isinstance(downsample, ShortcutA):
        return ZeroPadShortcut(int(downsample.out_planes), int(downsample.stride)), source
    name = f"{block_name}.downsample"
    units[name] = _unit(name, downsample[0], downsample[1], source, relu=False)
    return name, name


def _block(name, block, source, units):
    """The block's QuantBlock; its units added to ``units``. Returns (block, its output tensor's name)."""
    shortcut, residual = _shortcut(name, block.downsample, source, units)
    if hasattr(block, "conv_bn_pairs"):
        pairs, pre = block.conv_bn_pairs(), None
        relus = [True] * len(pairs)
    elif hasattr(block, "bn_conv_pairs"):
        bn_conv = block.bn_conv_pairs()
        scale, shift = bn_terms(bn_conv[0][0])
        pre = PreActivation(f"{name}.pre", scale.astype(np.float32), shift.astype(np.float32), source)
        following = [bn for bn, _ in bn_conv[1:]] + [None]  # every later BN folds into the conv before it
        pairs = [(conv, bn) for (_, conv), bn in zip(bn_conv, following)]
        relus = [bn is not None for bn in following]
    else:
        raise UserError(f"INT8: unknown block type {type(block).__name__}")
    reads = pre.name if pre else source
    names = []
    for i, ((conv, bn), relu) in enumerate(zip(pairs, relus)):
        unit_name = f"{name}.conv{i + 1}"
        last = i == len(pairs) - 1
        units[unit_name] = _unit(unit_name, conv, bn, reads, relu, residual if last else "")
        names.append(unit_name)
        reads = unit_name
    return QuantBlock(name, tuple(names), shortcut, pre, source), reads


def walk(net):
    """(units {name: QuantUnit} in execution order, stem names, max_pool, layers (tuple of tuples of
    QuantBlock), head (weight, bias) float32 or None) of eval-mode ``net``, with its folded float weights."""
    if not hasattr(net, "stem_pairs"):
        raise UserError(f"INT8 needs a network of src.models.families, not {type(net).__name__}")
    units, reads = {}, INPUT
    stem = []
    for i, (conv, bn) in enumerate(net.stem_pairs()):
        units[f"stem.{i}"] = _unit(f"stem.{i}", conv, bn, reads, relu=True)
        reads = f"stem.{i}"
        stem.append(reads)
    layers = []
    for li, layer in enumerate((net.layer1, net.layer2, net.layer3, net.layer4), 1):
        blocks = []
        for bi, block in enumerate(layer):
            folded, reads = _block(f"layer{li}.{bi}", block, reads, units)
            blocks.append(folded)
        layers.append(tuple(blocks))
    fc = net.fc
    head = None if not hasattr(fc, "weight") else (fc.weight.asnumpy().astype(np.float32),
                                                    fc.bias.asnumpy().astype(np.float32))
    return units, tuple(stem), not bool(net.no_max_pool), tuple(layers), head


def tensor_dtypes(units, layers):
    """{tensor name: 'u8' | 's8' | 'f32'}: the clips s8; a ReLU's output u8; any other s8; the last unit's
    output f32; a pre-activation's output u8."""
    dtypes = {INPUT: "s8"}
    for name, unit in units.items():
        dtypes[name] = "u8" if unit.relu else "s8"
    dtypes[last_unit(units)] = "f32"
    for layer in layers:
        for block in layer:
            if block.pre is not None:
                dtypes[block.pre.name] = "u8"
    return dtypes


def last_unit(units):
    """The name of the unit whose output the head reads (the last one in execution order)."""
    return next(reversed(units))


def with_scales(units, layers, activations):
    """``units`` and ``layers`` with every in/out/residual dtype and scale filled in from ``activations``
    ({tensor: (dtype, scale)}); the first unit's in_dtype is 'f32' (it reads the float clips)."""
    def dtype_scale(tensor):
        dtype, scale = activations[tensor]
        return dtype, float(scale)

    filled = {}
    for name, unit in units.items():
        in_dtype, in_scale = dtype_scale(unit.source)
        out_dtype, out_scale = dtype_scale(name)
        filled[name] = replace(unit, in_dtype="f32" if unit.source == INPUT else in_dtype, in_scale=in_scale,
                               out_dtype=out_dtype, out_scale=out_scale if out_dtype != "f32" else 1.0,
                               residual=dtype_scale(unit.residual_source) if unit.residual_source else None)
    new_layers = tuple(tuple(replace(block, pre=None if block.pre is None else replace(
        block.pre, in_dtype=activations[block.pre.source][0], in_scale=float(activations[block.pre.source][1]),
        out_scale=float(activations[block.pre.name][1]))) for block in layer) for layer in layers)
    return filled, new_layers
