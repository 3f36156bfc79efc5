"""FastConv3d: a drop-in for the model's nn.Conv3d on CPU, running oneDNN's blocked JIT kernels.

MindSpore's CPU Conv3D makes oneDNN use its reference kernel (~1 GFLOP/s); this Cell calls
our aot Custom op (src/ops/csrc/conv3d_dnnl.cc, built by `make setup`) on the same bundled oneDNN.
It keeps nn.Conv3d's parameter name `weight`, shape (out, in, kd, kh, kw) and init, so checkpoints
move freely between fast and native models. No bias. Tensors are float32; the op computes in float32 or,
for mixed-precision training (set_training_precision), in bfloat16 with float32 accumulation.
"""
import ctypes
import functools
import logging
import platform

import numpy as np

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import HeNormal, initializer

from src.ops.build import FALLBACK_COST, dotted, loaded_dnnl_version, unpack
from src.ops.paths import LIBRARY_ENV, library_path, library_requested

log = logging.getLogger(__name__)

# the training convolution and the max-pool (src/ops/fast_pool3d.py): the model uses both or neither
SYMBOLS = ("conv3d_fwd", "conv3d_fwd_nodx", "conv3d_bwd_data", "conv3d_bwd_weights", "conv3d_bf16_fallbacks",
           "maxpool3d_fwd", "maxpool3d_infer", "maxpool3d_bwd")


def status():
    """(available, reason). Loads the library but builds no oneDNN kernel, so the AVX2 cap of
    src.runtime stays possible whatever the answer. A library named by RESNET3D_FAST_CONV_LIB that cannot be
    used is one warning (path and reason), once per process: the run is not what was asked for."""
    return _status(str(library_path()), library_requested())


def symbols_status(symbols):
    """(available, reason) for an op whose entry points are ``symbols`` in the library: the library usable
    (status) and holding them all (a library built before the op lacks them)."""
    available, reason = status()
    if not available:
        return available, reason
    return _symbols_status(str(library_path()), tuple(symbols))


@functools.cache
def _symbols_status(path, symbols):
    lib = ctypes.CDLL(path)
    missing = [s for s in symbols if not hasattr(lib, s)]
    if missing:
        return False, f"{path} lacks {', '.join(missing)}: rebuild with 'make ops'"
    return True, f"loaded {path}"


@functools.cache
def _status(path, requested=False):
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False, f"fast conv op supports Linux x86_64 only, not {platform.system()} {platform.machine()}"
    try:
        lib = ctypes.CDLL(path)
    except OSError as err:
        why = str(err).removeprefix(f"{path}: ")
        if requested:
            return _refused(path, f"cannot be loaded ({why})")
        return False, f"cannot load {path} ({why}); set {LIBRARY_ENV} or run 'make setup'"
    missing = [s for s in SYMBOLS if not hasattr(lib, s)]
    if missing or not hasattr(lib, "conv3d_dnnl_linked_version"):
        lacks = f"lacks {', '.join(missing or ['its oneDNN version'])}"
        if requested:
            return _refused(path, f"is not the fast conv library ({lacks})")
        return False, f"{path} {lacks}: rebuild with 'make setup'"
    built_for, loaded = unpack(lib.conv3d_dnnl_linked_version()), loaded_dnnl_version(lib)
    if built_for != loaded:
        reason = (f"{path} was built for oneDNN {dotted(built_for)} but this process runs oneDNN {dotted(loaded)} "
                  f"(MindSpore upgraded?): rebuild with 'make ops'")
        log.warning("fast CPU op refused: %s; %s", reason, FALLBACK_COST)  # once: _status is cached
        return False, reason
    return True, f"loaded {path} (oneDNN {dotted(loaded)})"


def _refused(path, why):
    reason = f"{LIBRARY_ENV}={path} {why}"
    log.warning("warning: %s: native convolutions run instead; point %s at a libconv3d_dnnl.so built by "
                "'make ops', or unset it", reason, LIBRARY_ENV)  # once: _status is cached
    return False, reason


def call_counts():
    """{'fwd', 'bwd_data', 'bwd_weights', 'stem_bwd_weights', 'bf16_fallbacks'}: kernel calls so far in this
    process (for tests); 'stem_bwd_weights' counts the backward-weights calls that ran the stem's own kernel,
    'bf16_fallbacks' the BF16 passes that failed their one check against FP32 (conv3d_dnnl.cc) and so run
    in FP32."""
    lib = ctypes.CDLL(str(library_path()))  # dlopen returns the instance MindSpore already loaded
    lib.conv3d_dnnl_calls.restype = ctypes.c_long
    lib.conv3d_bf16_fallbacks.restype = ctypes.c_long
    names = ("fwd", "bwd_data", "bwd_weights", "stem_bwd_weights")
    return {**{name: lib.conv3d_dnnl_calls(i) for i, name in enumerate(names)},
            "bf16_fallbacks": lib.conv3d_bf16_fallbacks()}


def triple(v):
    """An int or a 3-sequence as a (D, H, W) tuple of ints (a kernel size, stride or padding)."""
    return tuple(int(x) for x in v) if isinstance(v, (tuple, list)) else (int(v),) * 3


# precision codes of the op's parameter tensor (its 10th element; see conv3d_dnnl.cc)
PRECISION_CODES = {"fp32": 0, "bf16": 1}


def conv_params(stride, padding, dilation, precision="fp32", groups=1):
    """The op's int64 parameter tensor: stride, padding, dilation (3 each), the compute precision and the
    number of groups (weights (out, in / groups, kd, kh, kw), as nn.Conv3d's)."""
    return Tensor(np.array((*stride, *padding, *dilation, PRECISION_CODES[precision], groups), np.int64))


def set_training_precision(net, precision):
    """Make every fast training convolution of ``net`` compute in ``precision`` ('fp32' or 'bf16': BF16
    inputs and weights, FP32 accumulation and output, so the graph around it stays FP32). Call before the
    network's first run. Returns how many convolutions it set."""
    cells = [cell for _, cell in net.cells_and_names() if hasattr(cell, "set_precision")]
    for cell in cells:
        cell.set_precision(precision)
    return len(cells)


def _out_len(n, k, s, p, d):
    return -1 if n < 0 else (n + 2 * p - d * (k - 1) - 1) // s + 1


@functools.cache
def _backward_ops(path):
    """dx and dw ops, shared by every conv: their shapes follow from inputs alone."""
    f32 = ms.float32
    dx = ops.Custom(f"{path}:conv3d_bwd_data", lambda dy, w, p, x: x, lambda dy, w, p, x: f32,
                    func_type="aot")
    dw = ops.Custom(f"{path}:conv3d_bwd_weights", lambda x, dy, p, w: w, lambda x, dy, p, w: f32,
                    func_type="aot")
    return dx, dw


def _make_bprop(path, input_grad):
    # MindSpore (GRAPH mode) keeps the first bprop it parses per `func` string, so this function
    # must depend only on its arguments and `input_grad`, which has its own symbol (see .cc).
    dx_op, dw_op = _backward_ops(path)

    def bprop(x, w, p, out, dout):
        dx = dx_op(dout, w, p, x) if input_grad else ops.zeros_like(x)
        return dx, dw_op(x, dout, p, w), ops.zeros_like(p)

    return bprop


class FastConv3d(nn.Cell):
    """3-D convolution, PyTorch-style symmetric padding per dimension, no bias.

    ``input_grad=False`` skips the input gradient (dx = 0) for a convolution reading the network
    input (the stem), whose input needs no gradient. ``groups`` > 1: a grouped convolution (ResNeXt), one
    oneDNN grouped primitive per pass, weight (out, in / groups, kd, kh, kw) as nn.Conv3d(group=...)'s.
    ``weight_init``: an initializer or tensor (default He normal, fan_out, as upstream's ResNets).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 input_grad=True, groups=1, weight_init=None):
        super().__init__()
        available, reason = status()
        if not available:
            raise RuntimeError(f"FastConv3d unavailable: {reason}")
        self.kernel_size = triple(kernel_size)
        self.stride, self.padding, self.dilation = triple(stride), triple(padding), triple(dilation)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.input_grad, self.groups = bool(input_grad), int(groups)
        if in_channels % self.groups or out_channels % self.groups:
            raise ValueError(f"FastConv3d: {in_channels} -> {out_channels} channels not divisible by {groups} groups")
        weight_init = HeNormal(mode="fan_out", nonlinearity="relu") if weight_init is None else weight_init
        self.weight = Parameter(initializer(weight_init, (out_channels, in_channels // self.groups,
                                                          *self.kernel_size), ms.float32), name="weight")
        self.set_precision("fp32")
        path = str(library_path())
        symbol = "conv3d_fwd" if self.input_grad else "conv3d_fwd_nodx"
        self.conv = ops.Custom(f"{path}:{symbol}", self._out_shape, lambda x, w, p: ms.float32,
                               func_type="aot", bprop=_make_bprop(path, self.input_grad))
        # PyNative caches a Custom op's inferred output shape by its inputs' shapes: convolutions that read
        # the same input with another geometry must differ in an attribute to get their own shapes
        self.conv.add_prim_attr("geometry", f"{out_channels}x{in_channels}x{self.kernel_size}/{self.stride}/"
                                            f"{self.padding}/{self.dilation}/groups{self.groups}")

    def set_precision(self, precision):
        self.precision = precision
        self.conv_params = conv_params(self.stride, self.padding, self.dilation, precision, self.groups)

    def _out_shape(self, x, w, p):
        spatial = [_out_len(n, k, s, pd, d) for n, k, s, pd, d in
                   zip(x[2:], self.kernel_size, self.stride, self.padding, self.dilation)]
        return [x[0], self.out_channels, *spatial]

    def construct(self, x):
        return self.conv(x, self.weight, self.conv_params)

    def extend_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}"
                f"{'' if self.input_grad else ', input_grad=False'}"
                f"{'' if self.groups == 1 else f', groups={self.groups}'}"
                f"{'' if self.precision == 'fp32' else ', precision=' + self.precision}")
