"""Calibration: the activation scales of an INT8 network from its float32 activations on calibration clips.

The folded float32 network (src.quant.wiring.walk: BatchNorm folded as in the FP32 inference network) runs
unit by unit on the clips; an :class:`Observer` per tensor (the clips, every unit's output, every
pre-activation's output) keeps the exact max |x| and a uniform sample of the values (at most SAMPLE values,
fixed seed).

Method (:func:`choose_threshold`), per tensor: the clipping threshold T with the least mean squared error
between the tensor and its quantize-dequantize (u8: s = T / 255; s8: s = T / 127), among max |x|, fractions
of it (0.25 .. 0.99 in steps of 0.01) and the 99.9th / 99.99th / 99.999th percentiles of |x|. Why: pure
min/max lets one rare value spread the 255 (127) levels over a range most values never reach (the post-ReLU
tensors are long-tailed), a fixed percentile clips too much where the tail matters; the MSE choice is the
better of both per tensor, and on the demo model it kept the INT8 video top-1 with FP32's (docs/int8.md).
"""
import numpy as np

import mindspore as ms
from mindspore import ops

from src.models.folding import NativeConvBias
from src.models.resnet3d import MaxPool3dTorch, ShortcutA
from src.quant.wiring import INPUT, ZeroPadShortcut, tensor_dtypes

SAMPLE = 1 << 20  # values kept per tensor
SEED = 0
FRACTIONS = np.round(np.arange(0.25, 1.0, 0.01), 2)
PERCENTILES = (99.9, 99.99, 99.999)
METHOD = ("per tensor, the clipping threshold of least mean squared quantization error on the calibration "
          "activations among max |x|, 0.25..0.99 of it and the 99.9/99.99/99.999th percentiles of |x|")
LEVELS = {"u8": 255.0, "s8": 127.0}


class Observer:
    """Exact max |x| and a uniform sample (at most SAMPLE values) of one tensor over the calibration clips."""

    def __init__(self, rng):
        self.rng, self.max, self.parts, self.count = rng, 0.0, [], 0

    def add(self, values):
        flat = np.asarray(values, np.float32).ravel()
        self.max = max(self.max, float(np.abs(flat).max()) if flat.size else 0.0)
        self.count += flat.size
        self.parts.append(flat if flat.size <= SAMPLE else flat[self.rng.integers(0, flat.size, SAMPLE)])
        kept = sum(p.size for p in self.parts)
        if kept > 2 * SAMPLE:  # thin out to SAMPLE values drawn uniformly (with replacement: fast on big tensors)
            every = np.concatenate(self.parts)
            self.parts = [every[self.rng.integers(0, every.size, SAMPLE)]]

    def sample(self):
        return np.concatenate(self.parts) if self.parts else np.zeros(1, np.float32)


def _mse(values, threshold, dtype):
    levels = LEVELS[dtype]
    scale = threshold / levels
    low = 0.0 if dtype == "u8" else -128.0
    q = np.clip(np.rint(values / scale), low, levels) * scale
    return float(np.mean((q - values) ** 2, dtype=np.float64))


def choose_threshold(observer, dtype):
    """(threshold, which candidate won: 'max' / 'fraction' / 'percentile') of one tensor (see the module doc)."""
    values, top = observer.sample(), observer.max
    if top <= 0:
        return 1.0, "max"  # an all-zero tensor: any scale represents it
    magnitudes = np.abs(values)
    candidates = [(top, "max")] + [(top * f, "fraction") for f in FRACTIONS]
    candidates += [(float(np.percentile(magnitudes, p)), "percentile") for p in PERCENTILES]
    candidates = [(t, kind) for t, kind in candidates if t > 0]
    errors = [_mse(values, t, dtype) for t, _ in candidates]
    return candidates[int(np.argmin(errors))]


def _float_unit(unit, fused):
    options = dict(relu=unit.relu, residual=bool(unit.residual_source), groups=unit.groups)
    if fused:
        from src.ops.fused_conv3d import FusedConv3d

        return FusedConv3d(unit.weight, unit.bias, unit.stride, unit.padding, **options)
    return NativeConvBias(unit.weight, unit.bias, unit.stride, unit.padding, **options)


class FloatRunner:
    """The folded float32 network, unit by unit (PyNative), handing every named tensor to ``observe``. ``fused``:
    its units are the FP32 fused op's (MindSpore's Conv3D runs oneDNN's reference kernel on an uncapped CPU), each
    probed per input shape; a geometry oneDNN refuses in every form runs natively."""

    def __init__(self, units, stem, max_pool, layers, head, fused=False):
        self.units, self.stem, self.layers, self.head = units, stem, layers, head
        self.cells = {name: _float_unit(u, fused) for name, u in units.items()}
        self.probed = set()
        self.pool = MaxPool3dTorch("native", training=False) if max_pool else None
        self.pre = {b.pre.name: (ms.Tensor(b.pre.scale.reshape(1, -1, 1, 1, 1)),
                                 ms.Tensor(b.pre.shift.reshape(1, -1, 1, 1, 1)))
                    for layer in layers for b in layer if b.pre is not None}

    def _unit(self, name, x, residual, observe):
        cell = self.cells[name]
        if hasattr(cell, "probe") and (name, tuple(x.shape)) not in self.probed:
            from src.models.inference import NativeFallback

            if cell.probe(list(x.shape))[1]:
                cell.use_fallback(NativeFallback(cell))
            self.probed.add((name, tuple(x.shape)))
        out = cell(x, residual) if residual is not None else cell(x)
        observe(name, out)
        return out

    def _block(self, block, x, observe):
        if isinstance(block.shortcut, ZeroPadShortcut):
            identity = ShortcutA(block.shortcut.out_planes, block.shortcut.stride)(x)
        elif block.shortcut is None:
            identity = x
        else:
            identity = self._unit(block.shortcut, x, None, observe)
        if block.pre is not None:
            scale, shift = self.pre[block.pre.name]
            x = ops.relu(x * scale + shift)
            observe(block.pre.name, x)
        for i, name in enumerate(block.units):
            x = self._unit(name, x, identity if i == len(block.units) - 1 else None, observe)
        return x

    def __call__(self, clips, observe):
        """Float32 logits (or pooled features without a head) of ``clips`` [b, C, T, H, W]."""
        x = ms.Tensor(np.ascontiguousarray(clips, np.float32))
        observe(INPUT, x)
        for name in self.stem:
            x = self._unit(name, x, None, observe)
        if self.pool is not None:
            x = self.pool(x)
        for layer in self.layers:
            for block in layer:
                x = self._block(block, x, observe)
        pooled = x.asnumpy().mean(axis=(2, 3, 4))
        return pooled if self.head is None else pooled @ self.head[0].T + self.head[1]


def calibrate(walked, batches, fused=False):
    """(activations {tensor: (dtype, scale)}, winners {tensor: kind}, float logits of every clip) of the walked
    network (src.quant.wiring.walk's tuple) over ``batches`` (an iterable of float32 clip arrays); ``fused``: run
    it through the FP32 fused op (FloatRunner)."""
    units, stem, max_pool, layers, head = walked
    dtypes = tensor_dtypes(units, layers)
    rng = np.random.default_rng(SEED)
    observers = {name: Observer(rng) for name, dtype in dtypes.items() if dtype != "f32"}

    def observe(name, tensor):
        if name in observers:
            observers[name].add(tensor.asnumpy())

    runner = FloatRunner(units, stem, max_pool, layers, head, fused)
    logits = np.concatenate([runner(batch, observe) for batch in batches])
    activations, winners = {}, {}
    for name, dtype in dtypes.items():
        if dtype == "f32":
            activations[name] = ("f32", 1.0)
            continue
        threshold, kind = choose_threshold(observers[name], dtype)
        activations[name] = (dtype, float(np.float32(threshold / LEVELS[dtype])))
        winners[name] = kind
    return activations, winners, logits
