"""FastMaxPool3d: the model's 3x3x3 / stride 2 / padding 1 max-pool on CPU, as a MindSpore Custom op.

MindSpore's MaxPool3D makes oneDNN run its plain-layout kernel (~0.4 s for the r3d18 stem's pool at
batch 8 on AVX2, a tenth of a training step); src/ops/csrc/maxpool3d.cc is a direct loop in the
fast-op library. Training mode records each output's winning input index for the backward pass;
``training=False`` (the inference network) skips it, and pools bfloat16 too (``dtype``) and
channels-last [N, D, H, W, C] tensors (``channels_last``: the BF16 inference network), and channels-last
uint8 / int8 (the INT8 network's quantized activations: max commutes with the monotonic quantization, so
the pooled tensor keeps its scale). PyTorch's semantics: padding never wins, the first maximum wins, NaN
propagates.
"""
import ctypes
import functools

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn, ops

from src.ops.fast_conv3d import _out_len, status, triple
from src.ops.paths import library_path


def pool_counts():
    """{'fwd', 'bwd'}: pool kernel calls so far in this process (for tests)."""
    lib = ctypes.CDLL(str(library_path()))
    lib.maxpool3d_calls.restype = ctypes.c_long
    return {"fwd": lib.maxpool3d_calls(0), "bwd": lib.maxpool3d_calls(1)}


@functools.cache
def _backward_op(path):
    return ops.Custom(f"{path}:maxpool3d_bwd", lambda dy, idx, x, p: x, lambda dy, idx, x, p: ms.float32,
                      func_type="aot")


def _make_bprop(path):
    # one bprop per func string (see fast_conv3d._make_bprop): depends on nothing but `path`
    bwd = _backward_op(path)

    def bprop(x, p, out, dout):
        return bwd(dout[0], out[1], x, p), ops.zeros_like(p)

    return bprop


def _pooled(shape, kernel, stride, padding, channels_last=False):
    """Output shape of pooling an [N, C, D, H, W] input (channels_last: [N, D, H, W, C])."""
    spatial = shape[1:4] if channels_last else shape[2:]
    out = [_out_len(n, k, s, p, 1) for n, k, s, p in zip(spatial, kernel, stride, padding)]
    return [shape[0], *out, shape[4]] if channels_last else [shape[0], shape[1], *out]


class FastMaxPool3d(nn.Cell):
    """Max-pool over [N, C, D, H, W] float32 with PyTorch-style symmetric padding (inference: bfloat16 too,
    and channels-last float32, bfloat16, uint8 or int8)."""

    def __init__(self, kernel_size=3, stride=2, padding=1, training=True, dtype=ms.float32,
                 channels_last=False):
        super().__init__()
        available, reason = status()
        if not available:
            raise RuntimeError(f"FastMaxPool3d unavailable: {reason}")
        self.kernel_size, self.stride, self.padding = triple(kernel_size), triple(stride), triple(padding)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"padding {self.padding} must be at most half the kernel {self.kernel_size}")
        self.training_op = bool(training)
        if (dtype != ms.float32 or channels_last) and self.training_op:
            raise ValueError("the training max-pool is float32 NCDHW only")
        self.pool_params = Tensor(np.array(self.kernel_size + self.stride + self.padding, np.int64))
        path = str(library_path())
        # the shape functions are lambdas, not methods calling each other: in GRAPH mode MindSpore may
        # resolve a name like `_out_shape` to another Custom op's infer function of that name
        geometry = (self.kernel_size, self.stride, self.padding)
        if self.training_op:
            self.pool = ops.Custom(f"{path}:maxpool3d_fwd", lambda x, p: (_pooled(x, *geometry),) * 2,
                                   lambda x, p: (ms.float32, ms.int32), func_type="aot", bprop=_make_bprop(path))
        else:
            symbol = "maxpool3d_infer_ndhwc" if channels_last else "maxpool3d_infer"
            self.pool = ops.Custom(f"{path}:{symbol}", lambda x, p: _pooled(x, *geometry, channels_last),
                                   lambda x, p: dtype, func_type="aot")
        # PyNative caches a Custom op's inferred shape by its inputs' shapes (see FastConv3d): pools of
        # other geometries on one input shape must differ in an attribute
        self.pool.add_prim_attr("geometry", f"{self.kernel_size}/{self.stride}/{self.padding}")

    def construct(self, x):
        if self.training_op:
            return self.pool(x, self.pool_params)[0]
        return self.pool(x, self.pool_params)

    def extend_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
                f"{'' if self.training_op else ', training=False'}")
