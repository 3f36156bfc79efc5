"""Int8Conv3d: one conv unit of the INT8 inference network (issue 30) as a oneDNN INT8 convolution.

Scheme (docs/int8.md; src/ops/csrc/conv3d_int8.cc computes it), per output element of channel c:

    acc = sum(q_x * w_q)                          s32 accumulation, s8 weights, u8 / s8 activations
    y   = in_scale * w_scale[c] * acc + bias[c]   float32
    y  += res_scale * q_res                       a residual unit (q_res the residual's stored value)
    y   = max(y, 0)                               relu
    out = saturate(rint(y / out_scale))           u8 / s8, or y itself for a float32 output

Tensors are channels-last, [N, D, H, W, C], stored as mindspore.uint8 / int8 / float32 (MindSpore's aot
Custom ops take them as they are). A unit whose ``in_dtype`` is 'f32' takes the float32 clips NCDHW
[N, C, T, H, W] and quantizes them to s8 with its ``in_scale`` (round half to even, saturated) while
reordering them. The weights are a snapshot copied into the library under a handle (released when the cell
is collected); the library keeps one copy in the blocked layout the kernel chose and one primitive per
geometry. No bprop: inference only.

``probe(x_shape)`` asks oneDNN for the geometry's primitive before the first call: (out shape, None), or
(out shape, why) when oneDNN refuses it on this CPU, the caller then running its own emulation of the same
formula (``use_fallback``). ``implementation(x_shape)`` names the kernel oneDNN chose.
"""
import ctypes
import functools
import weakref

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn, ops

from src.ops.fast_conv3d import _out_len, symbols_status, triple
from src.ops.paths import library_path

SYMBOLS = ("conv3d_int8", "conv3d_int8_add", "conv3d_int8_prepare", "conv3d_int8_release", "conv3d_int8_probe")
REFUSE_ENV = "RESNET3D_INT8_REFUSE"  # tests only: 'all' | 'grouped' geometries count as refused (conv3d_int8.cc)
DTYPES = {"f32": ms.float32, "u8": ms.uint8, "s8": ms.int8}
TYPE_CODES = {"f32": 0, "u8": 1, "s8": 2}
NUMPY_TYPES = {"f32": np.float32, "u8": np.uint8, "s8": np.int8}


def status():
    """(available, reason) for the INT8 op (a library built before it lacks its symbols)."""
    return symbols_status(SYMBOLS)


@functools.cache
def _library(path):
    lib = ctypes.CDLL(path)  # the instance MindSpore's Custom op loads too (same path)
    p, i64, c_int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    lib.conv3d_int8_prepare.restype = i64
    lib.conv3d_int8_prepare.argtypes = (p, p, p, p, i64, c_int, c_int, c_int, p, c_int)
    lib.conv3d_int8_release.restype = None
    lib.conv3d_int8_release.argtypes = (i64,)
    lib.conv3d_int8_probe.restype = c_int
    lib.conv3d_int8_probe.argtypes = (i64, p, p, p, c_int, ctypes.c_char_p, i64)
    for name in ("conv3d_int8_calls", "conv3d_int8_handles", "conv3d_int8_plan_cache_entries"):
        getattr(lib, name).restype = ctypes.c_long
    return lib


def int8_counts():
    """{'calls', 'handles', 'plans'}: INT8 op calls so far, units held and primitives cached (for tests)."""
    lib = _library(str(library_path()))
    return {"calls": lib.conv3d_int8_calls(), "handles": lib.conv3d_int8_handles(),
            "plans": lib.conv3d_int8_plan_cache_entries()}


def _checked_arrays(weight_q, weight_scale, bias, groups):
    weight_q = np.asarray(weight_q)
    if weight_q.dtype != np.int8:
        if not np.issubdtype(weight_q.dtype, np.integer) or weight_q.min() < -128 or weight_q.max() > 127:
            raise ValueError(f"weight_q: want int8 values, got {weight_q.dtype}")
        weight_q = weight_q.astype(np.int8)
    weight_scale = np.ascontiguousarray(weight_scale, np.float32)
    bias = np.ascontiguousarray(bias, np.float32)
    out = weight_q.shape[0] if weight_q.ndim == 5 else -1
    if out < 0 or out % groups or weight_scale.shape != (out,) or bias.shape != (out,):
        raise ValueError(f"weight_q {weight_q.shape} / weight_scale {weight_scale.shape} / bias {bias.shape} / "
                         f"groups {groups}: want (out, in / groups, kd, kh, kw) / (out,) / (out,), out divisible by "
                         f"groups")
    if not (np.isfinite(weight_scale).all() and (weight_scale > 0).all()):
        raise ValueError("weight_scale: want finite positive scales")
    return np.ascontiguousarray(weight_q), weight_scale, bias


def _checked_scale(name, value):
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} {value}: want a finite positive scale")
    return value


class Int8Conv3d(nn.Cell):
    """One INT8 conv unit (see the module's doc) from numpy arrays.

    ``weight_q`` int8 (out, in / groups, kd, kh, kw), ``weight_scale`` float32 (out,), ``bias`` float32 (out,);
    PyTorch-style symmetric ``padding``; ``groups`` > 1: grouped (ResNeXt). ``in_dtype`` / ``out_dtype``: 'f32'
    (input: the float32 NCDHW clips; output: float32 NDHWC), 'u8' or 's8'. ``residual``: None, or
    (dtype, res_scale) of the tensor construct(x, residual) adds before the ReLU (its shape is the output's).
    """

    def __init__(self, weight_q, weight_scale, bias, stride=1, padding=0, groups=1, in_dtype="u8", in_scale=1.0,
                 out_dtype="u8", out_scale=1.0, relu=False, residual=None):
        super().__init__()
        available, reason = status()
        if not available:
            raise RuntimeError(f"Int8Conv3d unavailable: {reason}")
        self.groups = int(groups)
        arrays = _checked_arrays(weight_q, weight_scale, bias, self.groups)  # copied by the library, not kept
        self.out_channels, self.in_channels = arrays[0].shape[0], arrays[0].shape[1] * self.groups
        self.kernel_size = tuple(int(k) for k in arrays[0].shape[2:])
        self.stride, self.padding = triple(stride), triple(padding)
        for name, value, allowed in (("in_dtype", in_dtype, DTYPES), ("out_dtype", out_dtype, DTYPES),
                                     ("residual dtype", residual and residual[0], (None, *DTYPES))):
            if value not in allowed:
                raise ValueError(f"{name} {value!r}: want one of {', '.join(map(repr, allowed))}")
        self.in_dtype, self.out_dtype, self.relu = in_dtype, out_dtype, bool(relu)
        self.in_scale = _checked_scale("in_scale", in_scale)
        self.out_scale = 1.0 if out_dtype == "f32" else _checked_scale("out_scale", out_scale)  # f32: unused
        self.residual = None if residual is None else (residual[0], _checked_scale("res_scale", residual[1]))
        self._lib, self.fallback = _library(str(library_path())), None
        self.handle = self._prepare(*arrays)
        weakref.finalize(self, self._lib.conv3d_int8_release, self.handle)  # frees the library's copy
        self.conv_params = Tensor(np.array(self.stride + self.padding + (self.handle,), np.int64))
        self.conv = self._custom_op()

    def _prepare(self, weight_q, weight_scale, bias):
        dims = np.array(weight_q.shape, np.int64)
        res_type, res_scale = (-1, 1.0) if self.residual is None else (TYPE_CODES[self.residual[0]], self.residual[1])
        scales = np.array([self.in_scale, self.out_scale, res_scale], np.float32)
        handle = self._lib.conv3d_int8_prepare(weight_q.ctypes.data, dims.ctypes.data, weight_scale.ctypes.data,
                                               bias.ctypes.data, self.groups,
                                               TYPE_CODES[self.in_dtype], TYPE_CODES[self.out_dtype], res_type,
                                               scales.ctypes.data, int(self.relu))
        if handle <= 0:
            raise RuntimeError("conv3d_int8_prepare failed (see the message above)")
        return int(handle)

    def _custom_op(self):
        path, out_type = str(library_path()), DTYPES[self.out_dtype]
        symbol = "conv3d_int8" if self.residual is None else "conv3d_int8_add"
        op = ops.Custom(f"{path}:{symbol}", self._out_shape, lambda x, p, *residual: out_type, func_type="aot")
        # PyNative caches inferred shapes per op and input shapes: units reading the same input (a bottleneck's
        # conv1 and downsample) must differ in an attribute to get their own shapes
        op.add_prim_attr("weight_handle", self.handle)
        return op

    def _out_shape(self, x, p=None, *residual):
        spatial_in = x[2:] if self.in_dtype == "f32" else x[1:4]
        spatial = [_out_len(n, k, s, pd, 1) for n, k, s, pd in zip(spatial_in, self.kernel_size, self.stride,
                                                                      self.padding)]
        return [x[0], *spatial, self.out_channels]

    def _probe(self, x_shape):
        out_shape = self._out_shape(list(x_shape))
        x, y = np.array(x_shape, np.int64), np.array(out_shape, np.int64)
        params = np.array(self.stride + self.padding + (self.handle,), np.int64)
        why = ctypes.create_string_buffer(1024)
        code = self._lib.conv3d_int8_probe(self.handle, x.ctypes.data, y.ctypes.data, params.ctypes.data,
                                           int(self.residual is not None), why, len(why))
        text = why.value.decode(errors="replace")
        if code == 2:
            raise RuntimeError(f"conv3d_int8_probe: {text}")
        return out_shape, code, text

    def probe(self, x_shape):
        """(output shape, refusal): makes the primitive of a call on an input of ``x_shape`` (so the first call
        does not); ``refusal`` None when oneDNN accepts the geometry, else why not."""
        if self.fallback is not None:
            return self._out_shape(list(x_shape)), None
        out_shape, code, text = self._probe(x_shape)
        return out_shape, text if code else None

    def implementation(self, x_shape):
        """The name of the kernel oneDNN runs for an input of ``x_shape`` (e.g. 'brg_conv_fwd:avx512_core_vnni'),
        or None when it refuses the geometry."""
        _, code, text = self._probe(x_shape)
        return None if code else text

    def use_fallback(self, cell):
        """Run ``cell`` (same call and result) instead of the op from now on: for a geometry oneDNN refuses."""
        self.fallback = cell

    def construct(self, x, residual=None):
        if self.fallback is not None:  # a constant when GRAPH mode compiles a new input shape
            return self.fallback(x, residual)
        if self.residual is not None:
            return self.conv(x, self.conv_params, residual)
        return self.conv(x, self.conv_params)

    def extend_repr(self):
        res = "" if self.residual is None else f", residual=({self.residual[0]!r}, {self.residual[1]:.6g})"
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}" + (f", groups={self.groups}" if self.groups > 1 else "")
                + f", {self.in_dtype}({self.in_scale:.6g}) -> {self.out_dtype}"
                + (f"({self.out_scale:.6g})" if self.out_dtype != "f32" else "") + f", relu={self.relu}{res}")
