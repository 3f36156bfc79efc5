"""The INT8 inference network of a :class:`src.quant.model.QuantNetwork` (an INT8 model file, or a calibration's
result): clips float32 [b, C, T, H, W] -> logits float32 [b, n_classes], like the FP32 inference network.

Every family the FP32 inference network serves runs (3D ResNet, R(2+1)D, pre-activation, wide, ResNeXt, the
torchvision ones): the wiring comes from src.quant.wiring, the arithmetic is src.quant.model's formula.

Two ways to run a unit:

- the oneDNN INT8 convolution (src.ops.int8_conv3d.Int8Conv3d, when built): s8 weights, u8 / s8 activations,
  s32 accumulation, the requantization, residual add and ReLU fused; the integers stay NDHWC between units;
- the native emulation (:class:`EmulatedUnit`; conv_impl native, the op not built, or a geometry oneDNN
  refuses, e.g. every geometry on a CPU without INT8 dot products): a float32 convolution of the integer weights
  over the integer activations (both held as float32, exact below 2^24; through the FP32 fused op where it is built
  and conv_impl is not native, else MindSpore's Conv3d), then the same formula:
  y = in_scale * w_scale[c] * acc + bias[c] (+ res_scale * q_res), ReLU, rint / saturate to the output's range;
  between emulated units the integers are float32 NCDHW.

The first unit quantizes the clips itself; the last writes float32; the head runs in float32. On a CPU without
INT8 dot products (src.ops.isa.int8_support) the network runs, and says once that INT8 is slow here and why.
"""
import logging

import numpy as np

import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops
from mindspore import Parameter, Tensor
from mindspore.common.initializer import initializer

from src.models.folding import native_conv
from src.models.quantized_program import program_wanted
from src.models.resnet3d import MaxPool3dTorch, ShortcutA
from src.ops.fast_conv3d import _out_len

log = logging.getLogger("resnet3d")
RANGES = {"u8": (0.0, 255.0), "s8": (-128.0, 127.0)}


def _const(value, name, shape=None):
    value = np.asarray(value, np.float32)
    return Parameter(Tensor(value.reshape(shape) if shape else value), name=name, requires_grad=False)


def quantize(x, scale, dtype):
    """The integers (as float32) of float ``x`` in ``dtype`` ('u8' / 's8') with ``scale``: rint half to even."""
    low, high = RANGES[dtype]
    return ops.clip_by_value(ops.round(x / scale), low, high)


def float_conv(weight, stride, padding, groups=1, fused=False):
    """A float32 convolution (no bias) of ``weight`` over NCDHW: the FP32 fused op (oneDNN's optimised kernels;
    MindSpore's Conv3D runs oneDNN's reference kernel on an uncapped CPU) when ``fused``, else MindSpore's. A fused
    one is probed per input shape before it runs (:func:`probe_float`)."""
    if fused:
        from src.ops.fused_conv3d import FusedConv3d

        return FusedConv3d(weight, np.zeros(weight.shape[0], np.float32), stride, padding, groups=groups)
    return native_conv(weight, stride, padding, groups)


def conv_out_shape(unit, shape):
    """NCDHW output shape of ``unit`` (a QuantUnit) for an NCDHW input ``shape``."""
    spatial = [_out_len(n, k, s, p, 1) for n, k, s, p in zip(shape[2:], unit.weight_q.shape[2:], unit.stride,
                                                               unit.padding)]
    return [shape[0], unit.weight_q.shape[0], *spatial]


def probe_float(conv, shape):
    """Make a fused float_conv's plan for an NCDHW input of ``shape``; a geometry oneDNN refuses in every form runs
    MindSpore's convolution instead (said once)."""
    if not hasattr(conv, "probe"):
        return
    from src.models.inference import NativeFallback

    _, refusal = conv.probe(list(shape))
    if refusal:
        conv.use_fallback(NativeFallback(conv))
        _say_once(f"INT8 emulation: {refusal}: MindSpore's convolution runs this layer", logging.WARNING)


class EmulatedUnit(nn.Cell):
    """One INT8 unit computed in float32 on NCDHW integer-valued tensors (see the module's doc); ``fused``: its
    convolution is the FP32 fused op's."""

    def __init__(self, unit, fused=False):
        super().__init__()
        self.conv = float_conv(unit.weight_q.astype(np.float32), unit.stride, unit.padding, unit.groups, fused)
        self._unit = unit
        channels = (1, -1, 1, 1, 1)
        self.mult = _const(np.float32(unit.in_scale) * unit.weight_scale, "mult", channels)
        self.bias = _const(unit.bias, "bias", channels)
        self.reads_clips = unit.in_dtype == "f32"
        self.in_scale = float(unit.in_scale)
        self.has_residual = unit.residual is not None
        self.res_scale = float(unit.residual[1]) if self.has_residual else 1.0
        self.relu = bool(unit.relu)
        self.out_float = unit.out_dtype == "f32"
        self.out_scale = float(unit.out_scale)
        self.low, self.high = RANGES.get(unit.out_dtype, (0.0, 0.0))

    def probe(self, shape):
        """NCDHW output shape for an NCDHW input ``shape``, the fused convolution's plan made."""
        probe_float(self.conv, shape)
        return conv_out_shape(self._unit, list(shape))

    def construct(self, x, residual=None):
        if self.reads_clips:
            x = ops.clip_by_value(ops.round(x / self.in_scale), -128.0, 127.0)
        y = self.conv(x) * self.mult + self.bias
        if self.has_residual:
            y = y + residual * self.res_scale
        if self.relu:
            y = ops.relu(y)
        if self.out_float:
            return y
        return ops.clip_by_value(ops.round(y / self.out_scale), self.low, self.high)


class EmulatedPreActivation(nn.Cell):
    """A pre-activation block's BN + ReLU on NCDHW integers: dequantize, affine, ReLU, quantize to u8."""

    def __init__(self, pre):
        super().__init__()
        channels = (1, -1, 1, 1, 1)
        self.scale = _const(np.float32(pre.in_scale) * pre.scale, "scale", channels)
        self.shift = _const(pre.shift, "shift", channels)
        self.out_scale = float(pre.out_scale)

    def construct(self, x):
        y = ops.relu(x * self.scale + self.shift)
        return ops.clip_by_value(ops.round(y / self.out_scale), 0.0, 255.0)


class Int8Block(nn.Cell):
    """A residual block: [pre-activation], the body units, the last adding the shortcut (identity, a
    downsample unit, or a type-A zero-padded identity)."""

    def __init__(self, block, cells, maker):
        super().__init__()
        self.pre = None if block.pre is None else maker.pre(block.pre)
        self.body = nn.SequentialCell([cells[name] for name in block.units[:-1]])
        self.last = cells[block.units[-1]]
        shortcut = block.shortcut
        if hasattr(shortcut, "out_planes"):  # src.quant.wiring.ZeroPadShortcut (src.quant sits above src.models)
            self.shortcut = maker.zero_pad(shortcut)
        else:
            self.shortcut = None if shortcut is None else cells[shortcut]

    def construct(self, x):
        identity = x if self.shortcut is None else self.shortcut(x)
        inner = x if self.pre is None else self.pre(x)
        return self.last(self.body(inner), identity)


class Emulation:
    """The native emulation's cells (NCDHW float32 integers); ``fused``: convolutions through the FP32 fused op."""
    channels_last = False

    def __init__(self, fused=False):
        self.fused = fused
        self.name = "native emulation" + (" (float32 convolutions in the fused oneDNN op)" if fused else "")

    def unit(self, unit):
        return EmulatedUnit(unit, self.fused)

    def pre(self, pre):
        return EmulatedPreActivation(pre)

    def zero_pad(self, shortcut):
        return ShortcutA(shortcut.out_planes, shortcut.stride)

    def max_pool(self):
        return MaxPool3dTorch("native", training=False)


NUMPY_TO_MS = {"u8": ms.uint8, "s8": ms.int8, "f32": ms.float32}


class ChannelsLastFallback(nn.Cell):
    """An EmulatedUnit in the oneDNN network: NDHWC integers in (the clips NCDHW for the first unit), NDHWC of
    the unit's output type out. What runs a unit whose geometry oneDNN refuses."""

    def __init__(self, unit, fused=False):
        super().__init__()
        self.inner = EmulatedUnit(unit, fused)
        self.reads_clips = unit.in_dtype == "f32"
        self.out_type = NUMPY_TO_MS[unit.out_dtype]

    def construct(self, x, residual=None):
        x = x.astype(ms.float32)
        if not self.reads_clips:
            x = x.transpose(0, 4, 1, 2, 3)
        if residual is not None:
            residual = residual.astype(ms.float32).transpose(0, 4, 1, 2, 3)
        return self.inner(x, residual).transpose(0, 2, 3, 4, 1).astype(self.out_type)


class ChannelsLastPreActivation(nn.Cell):
    """EmulatedPreActivation on NDHWC integers (uint8 / int8 in, uint8 out)."""

    def __init__(self, pre):
        super().__init__()
        self.scale = _const(np.float32(pre.in_scale) * pre.scale, "scale")
        self.shift = _const(pre.shift, "shift")
        self.out_scale = float(pre.out_scale)

    def construct(self, x):
        y = ops.relu(x.astype(ms.float32) * self.scale + self.shift)
        return ops.clip_by_value(ops.round(y / self.out_scale), 0.0, 255.0).astype(ms.uint8)


class ChannelsLastZeroPad(nn.Cell):
    """Type-A shortcut on NDHWC integers: every ``stride``-th position, channels zero-padded."""

    def __init__(self, shortcut):
        super().__init__()
        self.out_planes, self.stride = int(shortcut.out_planes), int(shortcut.stride)

    def construct(self, x):
        out = x[:, ::self.stride, ::self.stride, ::self.stride, :]
        n, t, h, w, c = out.shape
        return ops.cat((out, ops.zeros((n, t, h, w, self.out_planes - c), out.dtype)), 4)


class OneDnn:
    """The oneDNN INT8 op's cells (NDHWC integers between units); a refused unit's emulation uses the FP32 fused op
    (``fused``)."""
    name = "oneDNN INT8 convolutions (s32 accumulation; requantization, residual add and ReLU fused)"
    channels_last = True

    def __init__(self, fused=True):
        self.fused = fused

    def unit(self, unit):
        from src.ops.int8_conv3d import Int8Conv3d

        return Int8Conv3d(unit.weight_q, unit.weight_scale, unit.bias, unit.stride, unit.padding, unit.groups,
                          unit.in_dtype, unit.in_scale, unit.out_dtype, unit.out_scale, unit.relu, unit.residual)

    def pre(self, pre):
        return ChannelsLastPreActivation(pre)

    def zero_pad(self, shortcut):
        return ChannelsLastZeroPad(shortcut)

    def max_pool(self):
        from src.ops.fast_pool3d import FastMaxPool3d

        return FastMaxPool3d(3, 2, 1, training=False, dtype=ms.uint8, channels_last=True)


class Int8ResNet3D(nn.Cell):
    """The INT8 network of a QuantNetwork; ``maker`` builds its cells (:class:`Emulation`, or the oneDNN op's)."""

    def __init__(self, network, maker=None):
        super().__init__()
        maker = maker or Emulation()
        self.description = maker.name
        cells = {name: maker.unit(unit) for name, unit in network.units.items()}
        self.stem = nn.SequentialCell([cells[name] for name in network.stem])
        self.max_pool = maker.max_pool() if network.max_pool else None
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            nn.SequentialCell([Int8Block(block, cells, maker) for block in layer]) for layer in network.layers)
        self.channels_last = maker.channels_last
        self._units = {id(cell): network.units[name] for name, cell in cells.items()}
        self._fused = bool(maker.fused)
        self._probed = set()
        self.program = None  # the trunk as one op (src/models/quantized_program.py), made at the first call
        self._want_program = self.channels_last and program_wanted()
        self._runner = {}
        if network.head is None:  # a feature extractor: the pooled features
            self.fc = nn.Identity()
        else:
            weight, bias = network.head
            self.fc = nn.Dense(weight.shape[1], weight.shape[0], weight_init=initializer(Tensor(weight), weight.shape),
                               bias_init=initializer(Tensor(bias), bias.shape))
        self.set_train(False)

    def _probe_unit(self, cell, shape):
        """The output shape of unit ``cell`` for ``shape``, its plan made; an INT8 geometry oneDNN refuses runs
        emulated from now on (said once per geometry)."""
        if isinstance(cell, EmulatedUnit):
            return cell.probe(shape)
        out, refusal = cell.probe(shape)
        if refusal:
            fallback = ChannelsLastFallback(self._units[id(cell)], self._fused)
            n, *rest = shape
            fallback.inner.probe(shape if fallback.reads_clips else [n, rest[3], *rest[:3]])
            cell.use_fallback(fallback)
            _say_once(f"INT8 network: {refusal}: this layer runs in the native emulation", logging.WARNING)
        return list(out)

    def probe(self, shape):
        """Make every unit's plan for clips of ``shape`` before the first call (INT8 units oneDNN refuses get their
        emulated fallback; fused float convolutions oneDNN refuses run natively)."""
        shape = list(shape)
        for cell in self.stem:
            shape = self._probe_unit(cell, shape)
        if self.max_pool is not None:
            spatial = shape[1:4] if self.channels_last else shape[2:]
            pooled = [(v - 1) // 2 + 1 for v in spatial]
            shape = [shape[0], *pooled, shape[4]] if self.channels_last else [shape[0], shape[1], *pooled]
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in layer:
                if block.shortcut is not None and id(block.shortcut) in self._units:
                    self._probe_unit(block.shortcut, shape)
                for cell in block.body:
                    shape = self._probe_unit(cell, shape)
                shape = self._probe_unit(block.last, shape)

    def __call__(self, *args, **kwargs):
        if (self.channels_last or self._fused) and args and hasattr(args[0], "shape"):
            key = tuple(args[0].shape)
            if key not in self._probed:
                self.probe(key)
                self._probed.add(key)
                self._set_program(len(self._probed) == 1)
        if self.program is not None:
            return self._runner["program"](*args, **kwargs)
        return super().__call__(*args, **kwargs)

    def _set_program(self, first):
        from src.models.quantized_program import ProgramNetwork, program_of

        if first and self._want_program:
            self.program = program_of(self)
            # the program and the head in a cell of their own (a dict entry: not a second path to their
            # parameters), so that MindSpore's per-call work does not walk the 53 unit cells; made once, so
            # that its graphs compiled for earlier clip shapes are kept
            self._runner = {} if self.program is None else {"program": ProgramNetwork(self.program, self.fc)}
        elif self.program is not None and any(getattr(c, "fallback", None) is not None
                                              for _, c in self.cells_and_names()):
            self.program, self._runner = None, {}  # a unit refused at this shape: one op per unit from now on

    def construct(self, x):
        x = self.stem(x)
        if self.max_pool is not None:
            x = self.max_pool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        if self.channels_last:
            return self.fc(x.astype(ms.float32).mean(axis=(1, 2, 3)))
        return self.fc(x.mean(axis=(2, 3, 4)))


def int8_network(network, conv_impl="auto"):
    """The INT8 inference network of ``network`` (a src.quant.model.QuantNetwork): the oneDNN INT8 op where it is
    built and ``conv_impl`` is auto / fast, else the native emulation. Says once how it runs."""
    from src.ops.int8_conv3d import status

    _say_speed_once()
    available, reason = status()
    use_op = conv_impl != "native" and available
    fused = conv_impl != "native" and _fused_available()
    why = reason if available else f"INT8 op unavailable: {reason}"
    why = f"conv_impl={conv_impl}" if conv_impl == "native" else why
    net = Int8ResNet3D(network, OneDnn(fused) if use_op else Emulation(fused))
    _say_once(f"inference network: INT8 (s8 weights per channel, u8/s8 activations per tensor, FP32 head), "
              f"{net.description} ({why})")
    return net


def _fused_available():
    from src.ops.fused_conv3d import status

    return status()[0]


def _say_speed_once():
    from src.ops.isa import int8_support

    fast, description = int8_support()
    if not fast:
        _say_once(f"INT8 is slow on this CPU: {description}; oneDNN's INT8 convolutions need them, so the units run "
                  f"in the float32 emulation of the scheme (same results, slower than FP32 here)", logging.WARNING)


_said = set()


def _say_once(line, level=logging.INFO):
    if line not in _said:
        _said.add(line)
        log.log(level, line)
