"""FusedConv3d: inference-only y = [relu](conv(x, w) + b [+ residual]) in one oneDNN primitive.

The weights (BatchNorm folded in by src.models.inference) are copied into the library once, under a
handle; the library reorders them to the kernel's blocked layout on first use and keeps that copy,
and it caches one primitive per geometry. The residual add and the ReLU are oneDNN post-ops
(sum, eltwise relu). No bprop: this op is for eval-mode networks only. The weights are a snapshot:
build a new cell after the weights change.

BF16 (``dtype=ms.bfloat16``): the output is bfloat16; the kernel runs on bfloat16 input and weights
with float32 accumulation, float32 bias and post-ops. The input may be float32 or bfloat16 (the library
converts a float32 one while reordering it), the residual has the output's type.

Layout (``channels_last=(input, output)``): a channels-last tensor is NDHWC, shape [N, D, H, W, C]; the
BF16 inference network passes NDHWC between layers, the layout of oneDNN's BF16 kernels, so that no
reorder runs between them.

ISAs: which forms oneDNN accepts depends on the ISA it runs on (the CPU, or a cap such as
ONEDNN_MAX_CPU_ISA). The library makes each geometry's plan from the first form oneDNN accepts: the
fused one, else the convolution alone with the residual add and ReLU applied after it, else (BF16)
the same in float32, a fallback said once on stderr (src/ops/csrc/conv3d_infer.cc). ``probe`` asks
for a geometry's plan before a network runs; a geometry oneDNN refuses in every form runs the cell
given by ``use_fallback`` instead (the inference network gives a native convolution).
"""
import ctypes
import functools
import weakref

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn, ops

from src.ops.fast_conv3d import _out_len, symbols_status, triple
from src.ops.paths import library_path

SYMBOLS = ("conv3d_infer", "conv3d_infer_add", "conv3d_infer_prepare_grouped", "conv3d_infer_release",
           "conv3d_infer_set_layout", "conv3d_infer_probe", "conv3d_infer_weights")
REFUSE_ENV = "RESNET3D_FUSED_REFUSE"  # tests only: post_ops | all [:grouped], see conv3d_infer.cc


def status():
    """(available, reason) for the fused inference op (a library built before it lacks its symbols)."""
    return symbols_status(SYMBOLS)


@functools.cache
def _library(path):
    lib = ctypes.CDLL(path)  # the instance MindSpore's Custom op loads too (same path)
    lib.conv3d_infer_prepare_grouped.restype = ctypes.c_int64
    lib.conv3d_infer_prepare_grouped.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
    lib.conv3d_infer_release.restype = None
    lib.conv3d_infer_release.argtypes = (ctypes.c_int64,)
    lib.conv3d_infer_set_layout.restype = ctypes.c_int
    lib.conv3d_infer_set_layout.argtypes = (ctypes.c_int64, ctypes.c_int, ctypes.c_int)
    lib.conv3d_infer_probe.restype = ctypes.c_int
    lib.conv3d_infer_probe.argtypes = (ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                                       ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int64)
    lib.conv3d_infer_weights.restype = ctypes.c_int
    lib.conv3d_infer_weights.argtypes = (ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p)
    lib.conv3d_infer_calls.restype = ctypes.c_long
    lib.conv3d_infer_handles.restype = ctypes.c_long
    return lib


def infer_counts():
    """{'calls', 'handles'}: fused-op calls so far and weight sets held (for tests)."""
    lib = _library(str(library_path()))
    return {"calls": lib.conv3d_infer_calls(), "handles": lib.conv3d_infer_handles()}


class FusedConv3d(nn.Cell):
    """Convolution + bias, then optionally ``+ residual`` and ReLU, from given float32 arrays.

    ``weight`` (out, in / groups, kd, kh, kw), as nn.Conv3d's, and ``bias`` (out,) are copied; PyTorch-style
    symmetric ``padding``; ``groups`` > 1: a grouped convolution (ResNeXt), one oneDNN primitive.
    ``residual=True``: construct(x, residual) returns relu(conv(x) + bias + residual) (with ``relu``),
    residual having the output's shape. ``dtype``: the output's type, ms.float32 or
    ms.bfloat16 (BF16 compute, see the module's doc). ``channels_last``: (input, output) NDHWC flags.
    """

    def __init__(self, weight, bias, stride=1, padding=0, dilation=1, relu=False, residual=False,
                 dtype=ms.float32, channels_last=(False, False), groups=1):
        super().__init__()
        available, reason = status()
        if not available:
            raise RuntimeError(f"FusedConv3d unavailable: {reason}")
        weight = np.ascontiguousarray(weight, np.float32)
        bias = np.ascontiguousarray(bias, np.float32)
        if weight.ndim != 5 or bias.shape != weight.shape[:1] or weight.shape[0] % groups:
            raise ValueError(f"weight {weight.shape} / bias {bias.shape} / groups {groups}: want (out, in / groups, "
                             f"kd, kh, kw) / (out,), out divisible by groups")
        self.out_channels, self.in_channels, self.groups = weight.shape[0], weight.shape[1] * groups, int(groups)
        self.kernel_size = tuple(int(k) for k in weight.shape[2:])
        self.stride, self.padding, self.dilation = triple(stride), triple(padding), triple(dilation)
        self.relu, self.residual = bool(relu), bool(residual)
        if dtype not in (ms.float32, ms.bfloat16):
            raise ValueError(f"dtype {dtype}: want mindspore.float32 or mindspore.bfloat16")
        self.dtype = dtype
        path = str(library_path())
        lib = _library(path)
        dims = np.array(weight.shape, np.int64)
        handle = lib.conv3d_infer_prepare_grouped(weight.ctypes.data, dims.ctypes.data, bias.ctypes.data, self.groups)
        if handle <= 0:
            raise RuntimeError("conv3d_infer_prepare_grouped failed (see the message above)")
        self.handle = int(handle)
        weakref.finalize(self, lib.conv3d_infer_release, self.handle)  # frees the library's copy
        self.channels_last = tuple(bool(v) for v in channels_last)
        if lib.conv3d_infer_set_layout(self.handle, *self.channels_last) != 0:
            raise RuntimeError(f"conv3d_infer_set_layout: unknown handle {self.handle}")
        self.conv_params = Tensor(np.array(self.stride + self.padding + self.dilation
                                           + (self.handle, int(self.relu)), np.int64))
        # no bprop, so one func string per arity is safe (bprop reuse is per func string)
        symbol = "conv3d_infer_add" if self.residual else "conv3d_infer"
        self.conv = ops.Custom(f"{path}:{symbol}", self._out_shape, lambda x, p, *residual: dtype, func_type="aot")
        # PyNative caches inferred shapes per op and input shapes: two convs reading the same input
        # (a bottleneck's conv1 and downsample) must differ in an attribute to get their own shapes
        self.conv.add_prim_attr("weight_handle", self.handle)
        self._lib, self.fallback = lib, None

    def probe(self, x_shape, x_dtype=ms.float32):
        """(output shape, refusal): makes the plan of a call on an input of ``x_shape`` and ``x_dtype`` (so the
        first call does not); ``refusal`` None when oneDNN accepts one of the op's forms, else why not."""
        out_shape = self._out_shape(list(x_shape), None)
        if self.fallback is not None:
            return out_shape, None
        x, y = np.array(x_shape, np.int64), np.array(out_shape, np.int64)
        why = ctypes.create_string_buffer(1024)
        code = self._lib.conv3d_infer_probe(self.handle, x.ctypes.data, y.ctypes.data,
                                            self.conv_params.asnumpy().ctypes.data, int(self.residual),
                                            int(x_dtype == ms.bfloat16), int(self.dtype == ms.bfloat16), why, len(why))
        if code == 2:
            raise RuntimeError(f"conv3d_infer_probe: {why.value.decode(errors='replace')}")
        return out_shape, why.value.decode(errors="replace") if code else None

    def plain_weights(self):
        """(weight, bias) float32 as given (the library's copy; the weights of a fallback)."""
        weight = np.empty((self.out_channels, self.in_channels // self.groups, *self.kernel_size), np.float32)
        bias = np.empty(self.out_channels, np.float32)
        if self._lib.conv3d_infer_weights(self.handle, weight.ctypes.data, bias.ctypes.data) != 0:
            raise RuntimeError(f"conv3d_infer_weights: unknown handle {self.handle}")
        return weight, bias

    def use_fallback(self, cell):
        """Run ``cell`` (same call and result) instead of the op from now on: for a geometry oneDNN refuses."""
        self.fallback = cell

    def _out_shape(self, x, p, *residual):
        cl_in, cl_out = self.channels_last
        spatial = [_out_len(n, k, s, pd, d) for n, k, s, pd, d in
                   zip(x[1:4] if cl_in else x[2:], self.kernel_size, self.stride, self.padding, self.dilation)]
        return [x[0], *spatial, self.out_channels] if cl_out else [x[0], self.out_channels, *spatial]

    def construct(self, x, residual=None):
        if self.fallback is not None:  # a constant when GRAPH mode compiles a new input shape
            return self.fallback(x, residual)
        if self.residual:
            return self.conv(x, self.conv_params, residual)
        return self.conv(x, self.conv_params)

    def extend_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, relu={self.relu}, residual={self.residual}"
                + (f", groups={self.groups}" if self.groups > 1 else "")
                + (", dtype=bfloat16" if self.dtype == ms.bfloat16 else "")
                + (f", channels_last={self.channels_last}" if any(self.channels_last) else ""))
