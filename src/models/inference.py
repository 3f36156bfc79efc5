"""Inference network of a trained network of any family: BatchNorm folded into the convolutions, activations fused.

``inference_network(net, conv_impl, precision)`` reads an eval-mode network of src.models.families (3D ResNet,
R(2+1)D with its 1x7x7 / Tx1x1 stem and 1x3x3 / 3x1x1 pairs, pre-activation, wide, ResNeXt; native or fast
convolutions) and returns a cell with the same call (clips float32 [b, 3, T, H, W] -> logits):

- every conv + BatchNorm pair becomes one convolution with bias: w' = w * g / sqrt(var + eps),
  b' = beta - mean * g / sqrt(var + eps) (computed in float64), exactly the eval-mode BatchNorm
  (src/models/folding.py, shared with the INT8 network of src/models/quantized.py);
- with the fast op (``fast``) the ReLU and the residual add run inside the convolution's oneDNN
  primitive (post-ops), and weights are reordered to the kernel's layout once, not per call;
- without it (``native``, or the op not built) the same folded weights run in nn.Conv3d, followed
  by MindSpore's bias add, residual add and ReLU;
- ResNeXt's grouped convolutions: with the fused op, one grouped oneDNN primitive (MindSpore's native
  grouped Conv3D is oneDNN's reference kernel on CPU, ~10x slower on ResNeXt-101); natively,
  nn.Conv3d(group=...) (split per group on Ascend);
- pre-activation blocks (BN -> ReLU -> conv): every BN but a block's first folds into the convolution
  before it; the first stays a per-channel affine + ReLU;
- ``precision="bf16"`` (fused op only; src.ops.isa decides where it is allowed): every convolution
  runs on bfloat16 input and weights with float32 accumulation and writes bfloat16, so activations
  stay bfloat16 from the stem's output to the last block (the stem reads the float32 clips, and the
  max-pool pools bfloat16); the global average pool and the fc head run in float32. Between layers
  the activations are channels-last (NDHWC, the layout of oneDNN's BF16 kernels: no reorder per layer).
  The pre-activation family runs in FP32 (said once).
- a geometry oneDNN refuses (which forms it accepts depends on the CPU's ISA, or a cap such as
  ONEDNN_MAX_CPU_ISA): the op runs the first form oneDNN accepts (src/ops/fused_conv3d.py); before the first
  call at each input shape every fused unit makes its plan (:meth:`InferenceResNet3D.probe`), and a unit
  whose every form is refused runs as a native convolution instead (:class:`NativeFallback`), said once.

The weights are a snapshot taken here (and MindSpore GRAPH mode does not see weights loaded into a
compiled network anyway): build the inference network after loading the checkpoint. Training keeps
the unfused network; export keeps it too (a Custom op does not export to ONNX).
"""
import logging

import numpy as np

import mindspore as ms
import mindspore.nn as nn
from mindspore import Tensor
from mindspore.common.initializer import initializer

from src.errors import UserError
from src.models.folding import BatchNormReLU, NativeConvBias, conv_geometry, fold_batch_norm
from src.models.resnet3d import MaxPool3dTorch, ShortcutA
from src.ops.fast_conv3d import triple
from src.ops.fused_conv3d import FusedConv3d

log = logging.getLogger("resnet3d")


class NativeFallback(nn.Cell):
    """What runs a fused unit whose every oneDNN form was refused: NativeConvBias on the unit's weights, in
    float32 NCDHW, converting from and to the unit's layouts (channels-last) and output type (bfloat16)."""

    def __init__(self, fused):
        super().__init__()
        weight, bias = fused.plain_weights()
        self.native = NativeConvBias(weight, bias, fused.stride, fused.padding, relu=fused.relu,
                                     residual=fused.residual, groups=fused.groups)
        self.cl_in, self.cl_out = fused.channels_last
        self.residual, self.dtype = fused.residual, fused.dtype

    def construct(self, x, residual=None):
        x = x.astype(ms.float32)
        if self.cl_in:
            x = x.transpose(0, 4, 1, 2, 3)
        if self.residual:
            residual = residual.astype(ms.float32)
            if self.cl_out:
                residual = residual.transpose(0, 4, 1, 2, 3)
            out = self.native(x, residual)
        else:
            out = self.native(x)
        if self.cl_out:
            out = out.transpose(0, 2, 3, 4, 1)
        return out.astype(self.dtype)


class UnitMaker:
    """Folded conv (+ bias, residual, ReLU) units: the fused op where it applies (BF16 when ``precision`` is
    bf16; grouped convolutions as one grouped primitive); natively otherwise. Counts what it built."""

    def __init__(self, conv_impl, precision="fp32"):
        self.fused = conv_impl == "fast"
        if precision != "fp32" and not self.fused:
            raise UserError(f"inference_network: precision {precision} needs the fused oneDNN op (conv_impl fast)")
        self.bf16 = precision == "bf16"
        self.counts = {"fused": 0, "native": 0, "native_grouped": 0, "fused_grouped": 0}

    def _options(self, reads_clips=False):
        """BF16: NDHWC bfloat16 in and out, except the first unit, which reads the float32 NCDHW clips."""
        if not self.bf16:
            return {}
        return {"dtype": ms.bfloat16, "channels_last": (not reads_clips, True)}

    def raw(self, weight, bias, stride, padding, relu=False, residual=False, reads_clips=False, groups=1):
        """A unit from folded arrays (also the stem's first convolution, the BF16 type-A shortcut)."""
        grouped = "_grouped" if groups > 1 else ""
        if self.fused:
            from src.ops.fused_conv3d import FusedConv3d

            self.counts["fused" + grouped] += 1
            return FusedConv3d(weight, bias, stride, padding, relu=relu, residual=residual, groups=groups,
                               **self._options(reads_clips))
        self.counts["native" + grouped] += 1
        return NativeConvBias(weight, bias, stride, padding, relu=relu, residual=residual, groups=groups)

    def __call__(self, conv, bn, relu=False, residual=False, reads_clips=False):
        weight, bias = fold_batch_norm(conv, bn)
        stride, padding = conv_geometry(conv)
        return self.raw(weight, bias, stride, padding, relu=relu, residual=residual, reads_clips=reads_clips,
                        groups=int(getattr(conv, "group", 1)))


class FoldedBlock(nn.Cell):
    """A post-activation block (3D ResNet, R(2+1)D, wide, ResNeXt) with BatchNorm folded: its
    ``conv_bn_pairs`` become convolution + bias + ReLU units, the last one adding the shortcut before its
    ReLU."""

    def __init__(self, block, unit, downsample):
        super().__init__()
        pairs = block.conv_bn_pairs()
        units = [unit(conv, bn, relu=True, residual=i == len(pairs) - 1) for i, (conv, bn) in enumerate(pairs)]
        self.body = nn.SequentialCell(units[:-1])
        self.last = units[-1]
        self.downsample = downsample

    def construct(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return self.last(self.body(x), identity)


class FoldedPreActBlock(nn.Cell):
    """A pre-activation block (BN -> ReLU -> conv, ...; shortcut added with no ReLU): the first BN + ReLU
    stay one per-channel affine; every later BN folds into the convolution before it; the last
    convolution adds the shortcut."""

    def __init__(self, block, unit, downsample):
        super().__init__()
        pairs = block.bn_conv_pairs()
        self.pre = BatchNormReLU(pairs[0][0])
        convs = [conv for _, conv in pairs]
        following_bn = [bn for bn, _ in pairs[1:]] + [None]
        units = [unit(conv, bn, relu=bn is not None, residual=bn is None) for conv, bn in zip(convs, following_bn)]
        self.body = nn.SequentialCell(units[:-1])
        self.last = units[-1]
        self.downsample = downsample

    def construct(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return self.last(self.body(self.pre(x)), identity)


def _shortcut_a_conv(shortcut, in_planes, unit):
    """Type-A shortcut as a 1x1x1 convolution with a 0/1 weight (bfloat16: MindSpore's CPU slicing has no
    bfloat16 kernel). Exact: each output is one input times 1 (or 0), accumulated in float32."""
    weight = np.zeros((shortcut.out_planes, in_planes, 1, 1, 1), np.float32)
    weight[np.arange(in_planes), np.arange(in_planes)] = 1.0
    return unit.raw(weight, np.zeros(shortcut.out_planes, np.float32), triple(shortcut.stride), (0, 0, 0))


def _fold_downsample(downsample, unit, in_planes=None):
    if isinstance(downsample, ShortcutA) and unit.bf16:
        return _shortcut_a_conv(downsample, in_planes, unit)
    if downsample is None or isinstance(downsample, ShortcutA):
        return downsample  # type A has no parameters: reused as is
    return unit(downsample[0], downsample[1])


def _fold_block(block, unit):
    if hasattr(block, "conv_bn_pairs"):
        in_planes = block.conv_bn_pairs()[0][0].in_channels
        return FoldedBlock(block, unit, _fold_downsample(block.downsample, unit, in_planes))
    if hasattr(block, "bn_conv_pairs"):
        return FoldedPreActBlock(block, unit, _fold_downsample(block.downsample, unit))
    raise UserError(f"inference_network: unknown block type {type(block).__name__}")


def _probe_unit(unit, shape, dtype):
    """(shape, dtype) out of fused ``unit``, whose plan for that input is made now; a unit oneDNN refuses in
    every form gets its native fallback, said once per geometry."""
    out, refusal = unit.probe(shape, dtype)
    if refusal:
        unit.use_fallback(NativeFallback(unit))
        _say_once(f"inference network: {refusal}: a native convolution (MindSpore's Conv3D, float32) runs this "
                  f"layer instead", logging.WARNING)
    return out, unit.dtype


def _probe(cell, shape, dtype):
    """(shape, dtype) out of ``cell`` (a part of a fused inference network) for an input of ``shape`` and
    ``dtype``, probing every fused unit on the way (_probe_unit)."""
    if isinstance(cell, FusedConv3d):
        return _probe_unit(cell, shape, dtype)
    if isinstance(cell, nn.SequentialCell):
        for part in cell:
            shape, dtype = _probe(part, shape, dtype)
        return shape, dtype
    if isinstance(cell, (FoldedBlock, FoldedPreActBlock)):
        if cell.downsample is not None:
            _probe(cell.downsample, shape, dtype)
        shape, dtype = _probe(cell.body, shape, dtype)
        return _probe(cell.last, shape, dtype)
    if isinstance(cell, ShortcutA):
        n, _, *spatial = shape
        return [n, cell.out_planes, *(-(-v // cell.stride) for v in spatial)], dtype
    return shape, dtype  # shape-preserving: BatchNormReLU


def _pooled(shape, channels_last):
    """The max-pool's (3, stride 2, padding 1) output shape."""
    spatial = shape[1:4] if channels_last else shape[2:]
    out = [(v - 1) // 2 + 1 for v in spatial]
    return [shape[0], *out, shape[4]] if channels_last else [shape[0], shape[1], *out]


class InferenceResNet3D(nn.Cell):
    """Eval-only network of any family (src.models.families) with folded BatchNorm; built by
    :func:`inference_network`."""

    def __init__(self, net, conv_impl, precision="fp32"):
        super().__init__()
        if precision == "bf16" and any(hasattr(b, "bn_conv_pairs") for layer in
                                        (net.layer1, net.layer2, net.layer3, net.layer4) for b in layer):
            _say_once("inference network: the pre-activation family runs in FP32 (BF16 covers the "
                      "post-activation families)")
            precision = "fp32"
        unit = UnitMaker(conv_impl, precision)
        self.conv_impl, self.precision = conv_impl, precision
        self.bf16 = precision == "bf16"
        self.stem = nn.SequentialCell([unit(conv, bn, relu=True, reads_clips=i == 0)
                                       for i, (conv, bn) in enumerate(net.stem_pairs())])
        self.no_max_pool = bool(net.no_max_pool)
        if self.bf16:
            from src.ops.fast_pool3d import FastMaxPool3d

            self.maxpool = FastMaxPool3d(3, 2, 1, training=False, dtype=ms.bfloat16, channels_last=True)
        else:
            self.maxpool = MaxPool3dTorch(conv_impl, training=False)
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            nn.SequentialCell([_fold_block(b, unit) for b in layer])
            for layer in (net.layer1, net.layer2, net.layer3, net.layer4))
        fc = net.fc
        if isinstance(fc, nn.Identity):  # a feature extractor (src.deploy.features): the pooled features
            self.fc = nn.Identity()
        else:
            self.fc = nn.Dense(fc.in_channels, fc.out_channels,
                               weight_init=initializer(Tensor(fc.weight.asnumpy()), fc.weight.shape),
                               bias_init=initializer(Tensor(fc.bias.asnumpy()), fc.bias.shape))
        self.unit_counts = dict(unit.counts)
        self._probed = set()
        self.set_train(False)

    def probe(self, shape, dtype=ms.float32):
        """Make every fused unit's plan for clips of ``shape`` before the network runs on them; a unit oneDNN
        refuses in every form runs natively from then on (said once). Called by the first call per shape."""
        shape = list(shape)
        for unit in self.stem:
            shape, dtype = _probe(unit, shape, dtype)
        if not self.no_max_pool:
            shape = _pooled(shape, self.bf16)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            shape, dtype = _probe(layer, shape, dtype)

    def __call__(self, *args, **kwargs):
        if self.conv_impl == "fast" and args and hasattr(args[0], "shape"):
            key = (tuple(args[0].shape), str(args[0].dtype))
            if key not in self._probed:
                self.probe(args[0].shape, args[0].dtype)
                self._probed.add(key)
        return super().__call__(*args, **kwargs)

    def construct(self, x):
        x = self.stem(x)
        if not self.no_max_pool:
            x = self.maxpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        if self.bf16:  # NDHWC; the pooled features and the head in float32
            return self.fc(x.astype(ms.float32).mean(axis=(1, 2, 3)))
        return self.fc(x.mean(axis=(2, 3, 4)))


def resolve_inference_impl(conv_impl):
    """'fast' when the fused op is usable and wanted (``fast`` or ``auto``), else 'native'."""
    if conv_impl not in ("auto", "fast", "native"):
        raise UserError(f"conv_impl '{conv_impl}' is not one of auto, fast, native")
    from src.ops.fused_conv3d import status

    available, reason = status()
    if conv_impl == "native":  # asked for, or what the runtime fell back to: say which, truthfully
        return "native", "conv_impl=native" if available else f"fused op unavailable: {reason}"
    return ("fast", reason) if available else ("native", f"fused op unavailable: {reason}")


def inference_network(net: nn.Cell, conv_impl: str = "auto", precision: str = "fp32") -> nn.Cell:
    """Eval-only copy of trained ``net`` with BatchNorm folded into its convolutions.

    ``conv_impl``: ``fast`` / ``auto`` -> fused oneDNN op (conv + bias + add + ReLU in one kernel),
    falling back to ``native`` (nn.Conv3d with bias, then add and ReLU) when the op is not built.
    ``precision``: ``fp32``, or ``bf16`` (a resolved Runtime.infer_precision: BF16 convolutions, see the
    module's doc; needs the fused op). Same call as ``net`` in eval mode: clips float32
    [b, C, T, H, W] -> logits float32 [b, n_classes].
    """
    if not hasattr(net, "stem_pairs"):
        raise UserError(f"inference_network needs a ResNet3D or another network of src.models.families, "
                        f"not {type(net).__name__}")
    if precision not in ("fp32", "bf16"):
        raise UserError(f"inference_network: precision '{precision}' is not one of fp32, bf16")
    impl, reason = resolve_inference_impl(conv_impl)
    folded = InferenceResNet3D(net, impl, precision)
    if impl == "fast":
        kind = "BF16 activations and weights, FP32 accumulation and head" if folded.bf16 else "FP32"
        _say_once("inference network: BatchNorm folded; conv + bias + residual add + ReLU fused in the oneDNN op, "
                  f"{kind} ({reason})")
    else:
        _say_once(f"inference network: BatchNorm folded; native Conv3d with bias + ReLU ({reason})")
    return folded


_said = set()


def _say_once(line, level=logging.INFO):
    """In-training evaluation builds an inference network every epoch: its description is said once."""
    if line not in _said:
        _said.add(line)
        log.log(level, line)
