"""Inference network of a trained ResNet3D: BatchNorm folded into the convolutions, activations fused.

``inference_network(net, conv_impl, precision)`` reads an eval-mode ResNet3D (src.models.resnet3d, native or
fast convolutions) and returns a cell with the same call (clips float32 [b, 3, T, H, W] -> logits):

- every conv + BatchNorm pair becomes one convolution with bias: w' = w * g / sqrt(var + eps),
  b' = beta - mean * g / sqrt(var + eps) (computed in float64), exactly the eval-mode BatchNorm;
- with the fast op (``fast``) the ReLU and the residual add run inside the convolution's oneDNN
  primitive (post-ops), and weights are reordered to the kernel's layout once, not per call;
- without it (``native``, or the op not built) the same folded weights run in nn.Conv3d, followed
  by MindSpore's bias add, residual add and ReLU.
- ``precision="bf16"`` (fused op only; src.ops.isa decides where it is allowed): every convolution
  runs on bfloat16 input and weights with float32 accumulation and writes bfloat16, so activations
  stay bfloat16 from the stem's output to the last block (the stem reads the float32 clips, and the
  max-pool pools bfloat16); the global average pool and the fc head run in float32. Between layers
  the activations are channels-last (NDHWC, the layout of oneDNN's BF16 kernels: no reorder per layer).

The weights are a snapshot taken here (and MindSpore GRAPH mode does not see weights loaded into a
compiled network anyway): build the inference network after loading the checkpoint. Training keeps
the unfused network; export keeps it too (a Custom op does not export to ONNX).
"""
import functools
import logging

import numpy as np

import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops
from mindspore import Parameter, Tensor
from mindspore.common.initializer import initializer

from src.errors import UserError
from src.models.resnet3d import BasicBlock, Bottleneck, MaxPool3dTorch, ResNet3D, ShortcutA
from src.ops.fast_conv3d import triple

log = logging.getLogger("resnet3d")


def conv_geometry(conv):
    """(stride, padding) triples of a model convolution (FastConv3d or nn.Conv3d, symmetric pads)."""
    if tuple(conv.dilation) != (1, 1, 1) or getattr(conv, "group", 1) != 1:
        raise UserError("inference_network: dilated or grouped convolutions are not supported")
    if not isinstance(conv, nn.Conv3d):
        return triple(conv.stride), triple(conv.padding)
    if conv.pad_mode == "valid":
        return triple(conv.stride), (0, 0, 0)
    p6 = tuple(conv.padding) if isinstance(conv.padding, (tuple, list)) else (int(conv.padding),) * 6
    if conv.pad_mode != "pad" or p6[0::2] != p6[1::2]:
        raise UserError(f"inference_network: convolution padding {conv.pad_mode} {conv.padding} "
                        f"is not symmetric")
    return triple(conv.stride), tuple(int(v) for v in p6[0::2])


def fold_batch_norm(conv, bn):
    """(weight, bias) float32 of conv followed by eval-mode ``bn`` (nn.BatchNorm3d), in float64."""
    inner = bn.bn2d
    gamma, beta = inner.gamma.asnumpy().astype(np.float64), inner.beta.asnumpy().astype(np.float64)
    mean = inner.moving_mean.asnumpy().astype(np.float64)
    var = inner.moving_variance.asnumpy().astype(np.float64)
    scale = gamma / np.sqrt(var + float(inner.eps))
    weight = conv.weight.asnumpy().astype(np.float64) * scale[:, None, None, None, None]
    return weight.astype(np.float32), (beta - mean * scale).astype(np.float32)


class NativeConvBias(nn.Cell):
    """Fallback of FusedConv3d: nn.Conv3d, + bias, then optionally ``+ residual`` and ReLU.

    The bias is a broadcast add rather than nn.Conv3d's own: with a bias attached, oneDNN's GEMM
    convolution (the capped native path) ran slower than the unfused network in our runs.
    """

    def __init__(self, weight, bias, stride, padding, relu=False, residual=False):
        super().__init__()
        out_c, in_c, *kernel = weight.shape
        pad6 = tuple(int(v) for v in np.repeat(padding, 2))
        self.conv = nn.Conv3d(in_c, out_c, tuple(kernel), stride=stride,
                              pad_mode="pad" if any(padding) else "valid",
                              padding=pad6 if any(padding) else 0, has_bias=False,
                              weight_init=initializer(Tensor(weight), weight.shape))
        self.bias = Parameter(Tensor(bias.reshape(1, out_c, 1, 1, 1)), name="bias", requires_grad=False)
        self.relu, self.residual = bool(relu), bool(residual)

    def construct(self, x, residual=None):
        out = self.conv(x) + self.bias
        if self.residual:
            out = out + residual
        if self.relu:
            out = ops.relu(out)
        return out


def _unit_factory(conv_impl, precision="fp32"):
    if conv_impl == "fast":
        from src.ops.fused_conv3d import FusedConv3d

        if precision == "bf16":  # NDHWC bfloat16 in and out; the stem's float32 NCDHW input is set apart
            return functools.partial(FusedConv3d, dtype=ms.bfloat16, channels_last=(True, True))
        return FusedConv3d
    if precision != "fp32":
        raise UserError(f"inference_network: precision {precision} needs the fused oneDNN op (conv_impl fast)")
    return NativeConvBias


class FoldedBlock(nn.Cell):
    """A BasicBlock (conv1, conv2) or Bottleneck (conv1 to conv3) with BatchNorm folded: each unit is a
    convolution + bias + ReLU, the last one adding the shortcut before its ReLU."""

    def __init__(self, block, unit, downsample):
        super().__init__()
        n = 3 if isinstance(block, Bottleneck) else 2
        units = [unit(*fold_batch_norm(getattr(block, f"conv{i}"), getattr(block, f"bn{i}")),
                      *conv_geometry(getattr(block, f"conv{i}")), relu=True, residual=i == n)
                 for i in range(1, n + 1)]
        self.body = nn.SequentialCell(units[:-1])
        self.last = units[-1]
        self.downsample = downsample

    def construct(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return self.last(self.body(x), identity)


def _shortcut_a_conv(shortcut, in_planes, unit):
    """Type-A shortcut as a 1x1x1 convolution with a 0/1 weight (bfloat16: MindSpore's CPU slicing has no
    bfloat16 kernel). Exact: each output is one input times 1 (or 0), accumulated in float32."""
    weight = np.zeros((shortcut.out_planes, in_planes, 1, 1, 1), np.float32)
    weight[np.arange(in_planes), np.arange(in_planes)] = 1.0
    return unit(weight, np.zeros(shortcut.out_planes, np.float32), triple(shortcut.stride), (0, 0, 0))


def _fold_downsample(downsample, unit, in_planes=None, precision="fp32"):
    if isinstance(downsample, ShortcutA) and precision == "bf16":
        return _shortcut_a_conv(downsample, in_planes, unit)
    if downsample is None or isinstance(downsample, ShortcutA):
        return downsample  # type A has no parameters: reused as is
    conv, bn = downsample[0], downsample[1]
    return unit(*fold_batch_norm(conv, bn), *conv_geometry(conv))


def _fold_block(block, unit, precision="fp32"):
    if not isinstance(block, (BasicBlock, Bottleneck)):
        raise UserError(f"inference_network: unknown block type {type(block).__name__}")
    downsample = _fold_downsample(block.downsample, unit, block.conv1.in_channels, precision)
    return FoldedBlock(block, unit, downsample)


class InferenceResNet3D(nn.Cell):
    """Eval-only ResNet3D with folded BatchNorm; built by :func:`inference_network`."""

    def __init__(self, net, conv_impl, precision="fp32"):
        super().__init__()
        unit = _unit_factory(conv_impl, precision)
        self.conv_impl, self.precision = conv_impl, precision
        self.bf16 = precision == "bf16"
        stem = functools.partial(unit, channels_last=(False, True)) if self.bf16 else unit  # reads the clips
        self.conv1 = stem(*fold_batch_norm(net.conv1, net.bn1), *conv_geometry(net.conv1), relu=True)
        self.no_max_pool = bool(net.no_max_pool)
        if self.bf16:
            from src.ops.fast_pool3d import FastMaxPool3d

            self.maxpool = FastMaxPool3d(3, 2, 1, training=False, dtype=ms.bfloat16, channels_last=True)
        else:
            self.maxpool = MaxPool3dTorch(conv_impl, training=False)
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            nn.SequentialCell([_fold_block(b, unit, precision) for b in layer])
            for layer in (net.layer1, net.layer2, net.layer3, net.layer4))
        fc = net.fc
        if isinstance(fc, nn.Identity):  # a feature extractor (src.deploy.features): the pooled features
            self.fc = nn.Identity()
        else:
            self.fc = nn.Dense(fc.in_channels, fc.out_channels,
                               weight_init=initializer(Tensor(fc.weight.asnumpy()), fc.weight.shape),
                               bias_init=initializer(Tensor(fc.bias.asnumpy()), fc.bias.shape))
        self.set_train(False)

    def construct(self, x):
        x = self.conv1(x)
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
    if conv_impl == "native":
        return "native", "requested"
    from src.ops.fused_conv3d import status

    available, reason = status()
    return ("fast", reason) if available else ("native", f"fused op unavailable: {reason}")


def inference_network(net: ResNet3D, conv_impl: str = "auto", precision: str = "fp32") -> nn.Cell:
    """Eval-only copy of trained ``net`` with BatchNorm folded into its convolutions.

    ``conv_impl``: ``fast`` / ``auto`` -> fused oneDNN op (conv + bias + add + ReLU in one kernel),
    falling back to ``native`` (nn.Conv3d with bias, then add and ReLU) when the op is not built.
    ``precision``: ``fp32``, or ``bf16`` (a resolved Runtime.infer_precision: BF16 convolutions, see the
    module's doc; needs the fused op). Same call as ``net`` in eval mode: clips float32
    [b, C, T, H, W] -> logits float32 [b, n_classes].
    """
    if not isinstance(net, ResNet3D):
        raise UserError(f"inference_network needs a ResNet3D, not {type(net).__name__}")
    if precision not in ("fp32", "bf16"):
        raise UserError(f"inference_network: precision '{precision}' is not one of fp32, bf16")
    impl, reason = resolve_inference_impl(conv_impl)
    folded = InferenceResNet3D(net, impl, precision)
    if impl == "fast":
        log.info("inference network: BatchNorm folded; conv + bias + residual add + ReLU fused in "
                 "the oneDNN op, %s (%s)", "BF16 activations and weights, FP32 accumulation and head"
                 if precision == "bf16" else "FP32", reason)
    else:
        log.info("inference network: BatchNorm folded; native Conv3d with bias + ReLU (%s)", reason)
    return folded
