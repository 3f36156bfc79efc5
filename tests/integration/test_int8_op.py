"""The oneDNN INT8 conv unit (src/ops/int8_conv3d.py) and the u8 NDHWC max-pool against the numpy reference of
the scheme (tests/helpers/int8_reference.py), on the network's geometries: the stem (float32 clips in), 3x3x3
u8 -> u8 with ReLU, the 1x1x1 stride-2 downsample (s8 / u8 -> s8), residual units, the float32 last unit,
ResNeXt's grouped 3x3x3 (cardinality 32, real widths), tiny spatial sizes.

Tolerance, u8 / s8 outputs: equal, except at most 1 LSB where y / out_scale lies within 8 float32 ulps of a
half-integer: the integer accumulation is exact in both (s32 vs int64, no sum reaches 2^31), and so is the
stem's quantization of the clips (the op divides and rounds half to even as numpy does), but oneDNN evaluates
the float part with its own roundings (a fused multiply-add with the bias, y * (1 / out_scale) instead of a
division), which moves y / out_scale by a few ulps: it changes the rounded integer only at a tie. Float32
outputs: within 1e-5 of the largest magnitude (the same few ulps). The inputs span the whole u8 / s8 range and
the output scales make a part of each output saturate. Exactness needs INT8 dot products (VNNI / AMX): without
them oneDNN's u8 x s8 pairs saturate at 16 bits, so the op refuses such an ISA (tested under an AVX2 cap) and these
comparisons skip there."""
import gc
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mindspore as ms
from mindspore import Tensor

from src.ops.int8_conv3d import REFUSE_ENV, Int8Conv3d, int8_counts, status
from tests.helpers import int8_reference as ref

AVAILABLE, REASON = status()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"INT8 op unavailable: {REASON} (run 'make ops')")
NO_DOT_PRODUCTS = "without INT8 dot products"  # the op's refusal on such an ISA (conv3d_int8.cc)
TIE_ULPS = 8
F32_TOLERANCE = 1e-5


def random_input(shape, dtype, rng):
    if dtype == "f32":
        return rng.standard_normal(shape).astype(np.float32)
    lo, hi, np_type = ref.RANGES[dtype]
    return rng.integers(lo, hi + 1, shape).astype(np_type)


def random_unit(out, cin, kernel, groups, rng):
    """weight_q (all of [-127, 127]), per-channel scales like a folded network's, bias."""
    w = rng.integers(-127, 128, (out, cin // groups, *kernel)).astype(np.int8)
    fan_in = cin // groups * int(np.prod(kernel))
    scale = (rng.uniform(0.5, 2.0, out) / (127 * np.sqrt(fan_in))).astype(np.float32)
    return w, scale, rng.standard_normal(out).astype(np.float32)


def check(got, y, out_dtype, out_scale):
    """``got`` (the op's output) against the reference's unrounded ``y`` (see the module's doc)."""
    if out_dtype == "f32":
        np.testing.assert_allclose(got, y, rtol=0, atol=F32_TOLERANCE * float(np.abs(y).max()))
        return
    want = ref.quantize(y, out_scale, out_dtype)
    assert got.dtype == want.dtype and got.shape == want.shape
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    v = y / np.float32(out_scale)
    near_tie = np.abs(np.abs(v - np.floor(v)) - 0.5) <= TIE_ULPS * np.spacing(np.abs(v).astype(np.float32))
    assert diff.max() <= 1, f"{int((diff > 1).sum())} outputs differ by more than 1 LSB"
    assert not (diff.astype(bool) & ~near_tie).any(), f"{int((diff & ~near_tie).sum())} mismatches off a tie"
    lo, hi, _ = ref.RANGES[out_dtype]
    saturated = (v > hi + 0.5) | (v < lo - 0.5)
    assert saturated.any() and saturated.mean() < 0.5  # a part saturates, most does not


def run_case(x_shape, out, kernel, stride, padding, groups=1, in_dtype="u8", out_dtype="u8", relu=True,
             residual=None, seed=0):
    """Builds the unit on random data, runs it, checks it; returns the cell."""
    rng = np.random.default_rng(seed)
    cin = x_shape[1] if in_dtype == "f32" else x_shape[4]
    w, ws, b = random_unit(out, cin, kernel, groups, rng)
    x = random_input(x_shape, in_dtype, rng)
    in_scale = float(np.abs(x).max() / 127) if in_dtype == "f32" else 0.05
    args = dict(stride=stride, padding=padding, groups=groups, in_dtype=in_dtype, in_scale=in_scale, relu=relu)
    res_value = None
    if residual is not None:
        y0 = ref.unit_float(x, w, ws, b, **args)
        res_value = random_input(y0.shape, residual, rng)
        residual = (residual, 1.0 if residual == "f32" else float(np.abs(y0).max() / 200))
    y = ref.unit_float(x, w, ws, b, **args, residual=residual, res_value=res_value)
    out_scale = float(np.abs(y).max() / (300 if out_dtype == "u8" else 150))  # the top saturates
    cell = Int8Conv3d(w, ws, b, **args, out_dtype=out_dtype, out_scale=out_scale, residual=residual)
    out_shape, refusal = cell.probe(x.shape)
    if refusal and NO_DOT_PRODUCTS in refusal:
        pytest.skip(f"the INT8 op refuses this CPU: {refusal}")
    assert refusal is None and tuple(out_shape) == y.shape
    got = (cell(Tensor(x)) if residual is None else cell(Tensor(x), Tensor(res_value))).asnumpy()
    check(got, y, out_dtype, out_scale)
    return cell


@pytest.mark.parametrize("shape, kernel, padding", [((2, 3, 6, 20, 20), (7, 7, 7), 3),
                                                     ((1, 3, 5, 17, 23), (1, 7, 7), (0, 3, 3)),
                                                     ((1, 2, 4, 9, 12), (3, 3, 5), (1, 1, 2))])
def test_stem_quantizes_the_float_clips(shape, kernel, padding):
    """The stem: float32 NCDHW clips in (quantized by the op), stride (1, 2, 2), u8 NDHWC out, ReLU; the op folds
    the kw taps into the channels (conv3d_int8.cc, Fold) and must give the unfolded convolution's result: 3D
    ResNet's 7x7x7, R(2+1)D's 1x7x7 on an odd width (the last input columns outside every window), and a
    2-channel 3x3x5."""
    cell = run_case(shape, 64, kernel, (1, 2, 2), padding, in_dtype="f32")
    assert cell.implementation(shape)


@pytest.mark.parametrize("channels", [(64, 64), (32, 48)])
def test_3x3x3_u8_to_u8_relu(channels):
    run_case((2, 4, 7, 7, channels[0]), channels[1], (3, 3, 3), 1, 1)


@pytest.mark.parametrize("in_dtype", ["u8", "s8"])
def test_downsample_1x1x1_stride2_to_s8(in_dtype):
    run_case((1, 4, 8, 8, 64), 128, (1, 1, 1), 2, 0, in_dtype=in_dtype, out_dtype="s8", relu=False)


@pytest.mark.parametrize("residual, out_dtype", [("u8", "u8"), ("s8", "u8"), ("u8", "s8")])
def test_residual_add_and_relu(residual, out_dtype):
    """The sum post-op reads the residual as its own type (u8 onto an s8 destination too)."""
    run_case((1, 4, 6, 6, 64), 64, (3, 3, 3), 1, 1, out_dtype=out_dtype, residual=residual)


@pytest.mark.parametrize("residual", [None, "u8", "f32"])
def test_float32_output(residual):
    """The last unit: float32 NDHWC out; a u8 residual is added from float32 (binary post-op), a float32 one by
    the sum post-op."""
    run_case((1, 2, 4, 4, 64), 256, (1, 1, 1), 1, 0, out_dtype="f32", residual=residual)


@pytest.mark.parametrize("width, stride, x_size", [(128, 1, (1, 4, 6, 6)), (512, 2, (1, 3, 5, 5)),
                                                   (1024, 1, (1, 1, 2, 2))])
def test_grouped_cardinality_32(width, stride, x_size):
    """ResNeXt's grouped 3x3x3 with 32 groups at its widths: layer1's 128 (4 channels a group), ResNeXt-101's
    layer3 (512, stride 2 in its first block) and layer4 (1024, 32 channels a group)."""
    run_case((*x_size, width), width, (3, 3, 3), stride, 1, groups=32)


@pytest.mark.parametrize("x_size, stride", [((1, 1, 1, 1), 1), ((2, 2, 2, 2), 2), ((1, 1, 3, 1), (1, 2, 1))])
def test_tiny_spatial_sizes(x_size, stride):
    run_case((*x_size, 32), 32, (3, 3, 3), stride, 1, residual=None)
    run_case((x_size[0], 3, *x_size[1:]), 16, (3, 7, 7), stride, (1, 3, 3), in_dtype="f32", seed=1)


def test_primitives_are_shared_and_weights_released():
    gc.collect()  # the cells of earlier tests
    before = int8_counts()
    cells = [run_case((1, 2, 5, 5, 16), 16, (3, 3, 3), 1, 1, seed=s) for s in range(3)]
    after = int8_counts()
    assert after["handles"] == before["handles"] + 3
    assert after["plans"] - before["plans"] <= 1  # one geometry, one primitive
    del cells
    gc.collect()
    assert int8_counts()["handles"] == before["handles"]


def test_refused_geometry_is_told_before_running(monkeypatch):
    rng = np.random.default_rng(3)
    cell = Int8Conv3d(*random_unit(32, 32, (3, 3, 3), 32, rng), padding=1, groups=32, in_scale=0.1, out_scale=0.1)
    plain = Int8Conv3d(*random_unit(32, 32, (3, 3, 3), 1, rng), padding=1, in_scale=0.1, out_scale=0.1)
    refusal = plain.probe((1, 3, 3, 4, 32))[1]
    if refusal and NO_DOT_PRODUCTS in refusal:
        pytest.skip(f"the INT8 op refuses this CPU: {refusal}")
    monkeypatch.setenv(REFUSE_ENV, "grouped")
    out_shape, refusal = cell.probe((1, 3, 3, 3, 32))
    assert out_shape == [1, 3, 3, 3, 32] and REFUSE_ENV in refusal and cell.implementation((1, 3, 3, 3, 32)) is None
    assert plain.probe((1, 3, 3, 5, 32))[1] is None  # a new geometry of a plain convolution: accepted
    cell.use_fallback(lambda x, residual: x)  # what the network does: its emulation instead
    assert cell.probe((1, 3, 3, 3, 32))[1] is None


PROBE_UNDER_CAP = """
import numpy as np
from src.ops.int8_conv3d import Int8Conv3d
cell = Int8Conv3d(np.ones((8, 8, 1, 1, 1), np.int8), np.ones(8, np.float32), np.zeros(8, np.float32))
print("refusal:", cell.probe((1, 2, 2, 2, 8))[1])
"""


def test_isa_without_int8_dot_products_is_refused():
    """Under ONEDNN_MAX_CPU_ISA=AVX2 (no VNNI) oneDNN's INT8 kernels would saturate: the probe refuses, saying why."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2", "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", PROBE_UNDER_CAP], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"refusal: oneDNN runs at an ISA {NO_DOT_PRODUCTS}" in done.stdout


def test_wrong_arguments_are_refused():
    rng = np.random.default_rng(4)
    w, ws, b = random_unit(8, 8, (1, 1, 1), 1, rng)
    with pytest.raises(ValueError, match="in_dtype"):
        Int8Conv3d(w, ws, b, in_dtype="int8")
    with pytest.raises(ValueError, match="out_scale"):
        Int8Conv3d(w, ws, b, out_scale=0.0)
    with pytest.raises(ValueError, match="weight_q"):
        Int8Conv3d(w.astype(np.int32) * 2, ws, b)
    with pytest.raises(ValueError, match="groups"):
        Int8Conv3d(w, ws, b, groups=3)


@pytest.mark.parametrize("dtype", ["u8", "s8"])
def test_max_pool_of_quantized_activations(dtype):
    from src.ops.fast_pool3d import FastMaxPool3d

    x = random_input((2, 5, 9, 8, 24), dtype, np.random.default_rng(5))
    pool = FastMaxPool3d(3, 2, 1, training=False, dtype={"u8": ms.uint8, "s8": ms.int8}[dtype], channels_last=True)
    got = pool(Tensor(x)).asnumpy()
    want = ref.max_pool(x)
    assert got.dtype == want.dtype and np.array_equal(got, want)
