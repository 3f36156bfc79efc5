"""BatchNorm folding and the native folded units, shared by the FP32 / BF16 inference network
(src/models/inference.py) and the INT8 one (src/models/quantized.py, src/quant): one implementation.

- :func:`fold_batch_norm`: conv followed by eval-mode BatchNorm as one convolution with bias,
  w' = w * g / sqrt(var + eps), b' = beta - mean * g / sqrt(var + eps) (computed in float64);
- :func:`conv_geometry`: a model convolution's (stride, padding) triples;
- :func:`native_conv`: a MindSpore convolution (no bias) of given weights (grouped: split per group where
  the device needs it);
- :class:`NativeConvBias`: that convolution + bias [+ residual] [ReLU]; :class:`BatchNormReLU`: a
  pre-activation block's first BN + ReLU as one per-channel affine.
"""
import numpy as np

import mindspore.nn as nn
import mindspore.ops as ops
from mindspore import Parameter, Tensor
from mindspore.common.initializer import initializer

from src.errors import UserError
from src.ops.fast_conv3d import triple


def conv_geometry(conv):
    """(stride, padding) triples of a model convolution (FastConv3d or nn.Conv3d, symmetric pads)."""
    if tuple(conv.dilation) != (1, 1, 1):
        raise UserError("inference_network: dilated convolutions are not supported")
    if not isinstance(conv, nn.Conv3d):
        return triple(conv.stride), triple(conv.padding)
    if conv.pad_mode == "valid":
        return triple(conv.stride), (0, 0, 0)
    p6 = tuple(conv.padding) if isinstance(conv.padding, (tuple, list)) else (int(conv.padding),) * 6
    if conv.pad_mode != "pad" or p6[0::2] != p6[1::2]:
        raise UserError(f"inference_network: convolution padding {conv.pad_mode} {conv.padding} "
                        f"is not symmetric")
    return triple(conv.stride), tuple(int(v) for v in p6[0::2])


def bn_terms(bn):
    """(scale, shift) float64 of eval-mode ``bn``: bn(x) = x * scale + shift per channel."""
    inner = bn.bn2d
    gamma, beta = inner.gamma.asnumpy().astype(np.float64), inner.beta.asnumpy().astype(np.float64)
    mean = inner.moving_mean.asnumpy().astype(np.float64)
    var = inner.moving_variance.asnumpy().astype(np.float64)
    scale = gamma / np.sqrt(var + float(inner.eps))
    return scale, beta - mean * scale


def fold_batch_norm(conv, bn):
    """(weight, bias) float32 of conv followed by eval-mode ``bn`` (nn.BatchNorm3d), in float64;
    ``bn`` None: the conv's own weight and a zero bias."""
    weight = conv.weight.asnumpy().astype(np.float64)
    if bn is None:
        return weight.astype(np.float32), np.zeros(weight.shape[0], np.float32)
    scale, shift = bn_terms(bn)
    return (weight * scale[:, None, None, None, None]).astype(np.float32), shift.astype(np.float32)


class NativeConvBias(nn.Cell):
    """Fallback of FusedConv3d: nn.Conv3d, + bias, then optionally ``+ residual`` and ReLU.

    The bias is a broadcast add rather than nn.Conv3d's own: with a bias attached, oneDNN's GEMM
    convolution (the capped native path) ran slower than the unfused network in our runs.
    """

    def __init__(self, weight, bias, stride, padding, relu=False, residual=False, groups=1):
        super().__init__()
        self.conv = native_conv(weight, stride, padding, groups)
        self.bias = Parameter(Tensor(bias.reshape(1, -1, 1, 1, 1)), name="bias", requires_grad=False)
        self.relu, self.residual = bool(relu), bool(residual)

    def construct(self, x, residual=None):
        out = self.conv(x) + self.bias
        if self.residual:
            out = out + residual
        if self.relu:
            out = ops.relu(out)
        return out


def native_conv(weight, stride, padding, groups=1):
    """nn.Conv3d (no bias) holding ``weight`` float32 [O, I/groups, kd, kh, kw]; ``padding`` symmetric per axis.
    Grouped (ResNeXt's 3x3x3): split per group where the device needs it."""
    out_c, in_c, *kernel = weight.shape
    pad6 = tuple(int(v) for v in np.repeat(padding, 2))
    if groups > 1:
        from src.models.families import grouped_conv3d

        return grouped_conv3d(in_c * groups, out_c, groups, stride[0], weight_init=Tensor(weight))
    return nn.Conv3d(in_c, out_c, tuple(kernel), stride=tuple(stride), pad_mode="pad" if any(padding) else "valid",
                     padding=pad6 if any(padding) else 0, has_bias=False,
                     weight_init=initializer(Tensor(weight), weight.shape))


class BatchNormReLU(nn.Cell):
    """Eval-mode BatchNorm then ReLU as one per-channel affine (the pre-activation blocks' input)."""

    def __init__(self, bn):
        super().__init__()
        scale, shift = bn_terms(bn)
        shape = (1, scale.size, 1, 1, 1)
        self.scale = Parameter(Tensor(scale.reshape(shape).astype(np.float32)), name="scale", requires_grad=False)
        self.shift = Parameter(Tensor(shift.reshape(shape).astype(np.float32)), name="shift", requires_grad=False)

    def construct(self, x):
        return ops.relu(x * self.scale + self.shift)
