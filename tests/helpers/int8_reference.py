"""numpy reference of one INT8 conv unit, exactly the scheme of docs/int8.md (issue 30), for the op's and the
quantized network's tests. Per output element of channel c:

    acc = sum(q_x * w_q)                          int64 here (the op accumulates in s32; no test reaches 2^31)
    y   = in_scale * w_scale[c] * acc + bias[c]   float32, evaluated left to right
    y  += res_scale * q_res                       a residual (a float32 residual: res_scale * r)
    y   = max(y, 0)                               relu
    out = saturate(rint(y / out_scale))           u8 / s8 (rint: round half to even), or y for a float32 output

Activations are channels-last NDHWC; a unit whose in_dtype is 'f32' takes NCDHW float32 clips and quantizes them
to s8 with its in_scale first (:func:`quantize`). The weights are (out, in / groups, kd, kh, kw) int8.
"""
import numpy as np

RANGES = {"u8": (0, 255, np.uint8), "s8": (-128, 127, np.int8)}


def quantize(x, scale, dtype):
    """clamp(rint(x / scale)) as 'u8' or 's8' (float32 division, round half to even)."""
    lo, hi, np_type = RANGES[dtype]
    return np.clip(np.rint(np.asarray(x, np.float32) / np.float32(scale)), lo, hi).astype(np_type)


def dequantize(q, scale):
    return np.float32(scale) * np.asarray(q).astype(np.float32)


def ndhwc(x):
    """[N, C, D, H, W] -> [N, D, H, W, C]."""
    return np.ascontiguousarray(np.moveaxis(x, 1, -1))


def int_conv(xq, weight_q, stride, padding, groups=1):
    """The integer convolution of NDHWC ``xq`` with (out, in / groups, kd, kh, kw) ``weight_q``: int64 NDHWC."""
    stride, padding = _triple(stride), _triple(padding)
    x = np.pad(np.asarray(xq).astype(np.int64), [(0, 0), *[(p, p) for p in padding], (0, 0)])
    w = np.asarray(weight_q).astype(np.int64)
    n, out, cg = x.shape[0], w.shape[0], w.shape[1]
    og = out // groups
    size = [(x.shape[1 + i] - w.shape[2 + i]) // stride[i] + 1 for i in range(3)]
    acc = np.zeros((groups, n * int(np.prod(size)), og), np.int64)
    wg = w.reshape(groups, og, cg, *w.shape[2:])
    for kd, kh, kw in np.ndindex(*w.shape[2:]):
        window = x[:, kd:kd + stride[0] * size[0]:stride[0], kh:kh + stride[1] * size[1]:stride[1],
                   kw:kw + stride[2] * size[2]:stride[2], :]
        cols = window.reshape(-1, groups, cg).transpose(1, 0, 2)           # (G, positions, Cg)
        acc += cols @ wg[:, :, :, kd, kh, kw].transpose(0, 2, 1)           # (G, Cg, Og)
    return acc.transpose(1, 0, 2).reshape(n, *size, out)


def unit_float(x, weight_q, weight_scale, bias, stride=1, padding=0, groups=1, in_dtype="u8", in_scale=1.0,
               relu=False, residual=None, res_value=None):
    """y of the scheme (float32 NDHWC) before the output's rounding. ``x``: NDHWC integers, or for in_dtype 'f32'
    the NCDHW float32 clips; ``residual`` (dtype, res_scale) with its tensor ``res_value`` (NDHWC)."""
    xq = quantize(ndhwc(x), in_scale, "s8") if in_dtype == "f32" else np.asarray(x)
    acc = int_conv(xq, weight_q, stride, padding, groups).astype(np.float32)
    y = (np.float32(in_scale) * np.asarray(weight_scale, np.float32)) * acc + np.asarray(bias, np.float32)
    if residual is not None:
        y = y + np.float32(residual[1]) * np.asarray(res_value).astype(np.float32)
    if relu:
        y = np.maximum(y, np.float32(0))
    return y.astype(np.float32)


def conv_unit(x, weight_q, weight_scale, bias, stride=1, padding=0, groups=1, in_dtype="u8", in_scale=1.0,
              out_dtype="u8", out_scale=1.0, relu=False, residual=None, res_value=None):
    """The unit's output: u8 / s8 (saturated, rint) or float32, NDHWC. Arguments as :func:`unit_float` and
    src.ops.int8_conv3d.Int8Conv3d's."""
    y = unit_float(x, weight_q, weight_scale, bias, stride, padding, groups, in_dtype, in_scale, relu, residual,
                   res_value)
    return y if out_dtype == "f32" else quantize(y, out_scale, out_dtype)


def run_unit(unit, x, res_value=None):
    """:func:`conv_unit` of an object with the unit's fields as attributes (src/quant's QuantUnit)."""
    names = ("weight_q", "weight_scale", "bias", "stride", "padding", "groups", "in_dtype", "in_scale", "out_dtype",
             "out_scale", "relu", "residual")
    return conv_unit(x, **{name: getattr(unit, name) for name in names}, res_value=res_value)


def max_pool(x, kernel=3, stride=2, padding=1):
    """Max-pool of an NDHWC tensor of any type, PyTorch's geometry; padding never wins (windows clipped)."""
    x = np.asarray(x)
    kernel, stride, padding = _triple(kernel), _triple(stride), _triple(padding)
    size = [(x.shape[1 + i] + 2 * padding[i] - kernel[i]) // stride[i] + 1 for i in range(3)]
    out = np.empty((x.shape[0], *size, x.shape[4]), x.dtype)
    for od, oh, ow in np.ndindex(*size):
        lo = [o * s - p for o, s, p in zip((od, oh, ow), stride, padding)]
        sl = [slice(max(b, 0), b + k) for b, k in zip(lo, kernel)]
        out[:, od, oh, ow] = x[:, sl[0], sl[1], sl[2]].max(axis=(1, 2, 3))
    return out


def _triple(v):
    return tuple(int(a) for a in v) if isinstance(v, (tuple, list)) else (int(v),) * 3
