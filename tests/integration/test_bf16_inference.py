"""BF16 inference (src/models/inference.py precision="bf16", the fused op and max-pool in bfloat16) against
FP32, on CPUs with native BF16; elsewhere only the refusal runs (tests/unit/test_isa.py covers the rest).

Stated tolerances (bfloat16 keeps 8 significant bits, relative rounding 2^-9 per value; accumulation is
float32): one convolution within 1 % of the largest FP32 output; whole networks' logits within 3 % of the
largest FP32 logit; the top-1 class of a model with confident predictions equal on every clip."""
import numpy as np
import pytest

import mindspore as ms
from mindspore import Tensor

import eval as eval_script
from src.errors import UserError
from src.models.inference import FoldedBlock, inference_network
from src.models.resnet3d import generate_model
from tests.helpers.tiny import make_tiny_checkpoint, tiny_options

from src.ops.fused_conv3d import FusedConv3d
from tests.helpers.nets import grouped_case
from tests.helpers.bf16 import needs_bf16, onednn_not_capped  # noqa: F401 - a fixture


CONV_TOLERANCE = 1e-2
LOGITS_TOLERANCE = 3e-2
# every block type, shortcut and stem variant the inference network folds (tiny widths)
CONFIGS = {
    "basic_B": dict(model_depth=10, resnet_shortcut="B"),
    "basic_A": dict(model_depth=10, resnet_shortcut="A"),
    "bottleneck_B": dict(model_depth=50, resnet_shortcut="B"),
    "bottleneck_A": dict(model_depth=50, resnet_shortcut="A"),
    "stem_t_stride2": dict(model_depth=10, conv1_t_size=3, conv1_t_stride=2),
    "no_max_pool": dict(model_depth=10, no_max_pool=True),
}


def trained_like(config, conv_impl="native", seed=0):
    """A tiny model with non-trivial BatchNorm statistics and affine terms, in eval mode."""
    ms.set_seed(seed)
    kw = dict(CONFIGS[config])
    net = generate_model(kw.pop("model_depth"), widen_factor=0.125, n_classes=7, conv_impl=conv_impl, **kw)
    rng = np.random.default_rng(seed)
    for p in net.get_parameters():
        if p.name.endswith(("moving_mean", "beta")):
            p.set_data(Tensor(rng.normal(0, 0.2, p.shape).astype(np.float32)))
        elif p.name.endswith(("moving_variance", "gamma")):
            p.set_data(Tensor(rng.uniform(0.5, 2.0, p.shape).astype(np.float32)))
    net.set_train(False)
    return net


def clip(seed=1):
    return Tensor(np.random.default_rng(seed).standard_normal((2, 3, 8, 32, 32)).astype(np.float32))


def relative_error(got, want):
    return float(np.abs(np.asarray(got, np.float64) - want).max() / np.abs(want).max())


def as_float32(t):
    return t.astype(ms.float32).asnumpy() if t.dtype == ms.bfloat16 else t.asnumpy()


def ndhwc(a):
    return np.ascontiguousarray(np.moveaxis(a, 1, -1))


@needs_bf16
@pytest.mark.parametrize("channels_last", [(False, False), (False, True), (True, True)])
@pytest.mark.parametrize("stride, residual", [(1, True), (2, False)])
def test_fused_conv_bf16_matches_fp32(stride, residual, channels_last):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((16, 8, 3, 3, 3)).astype(np.float32) * 0.2
    b = rng.standard_normal(16).astype(np.float32)
    x = rng.standard_normal((2, 8, 4, 10, 10)).astype(np.float32)
    args = dict(stride=stride, padding=1, relu=True, residual=residual)
    fp32 = FusedConv3d(w, b, **args)
    bf16 = FusedConv3d(w, b, dtype=ms.bfloat16, channels_last=channels_last, **args)
    res = rng.standard_normal(fp32._out_shape(x.shape, None)).astype(np.float32)
    want = (fp32(Tensor(x), Tensor(res)) if residual else fp32(Tensor(x))).asnumpy()
    x_f32 = Tensor(ndhwc(x) if channels_last[0] else x)
    res_in = Tensor(ndhwc(res) if channels_last[1] else res).astype(ms.bfloat16)
    for x_in in (x_f32, x_f32.astype(ms.bfloat16)):  # the stem reads float32, every later layer bfloat16
        got = bf16(x_in, res_in) if residual else bf16(x_in)
        assert got.dtype == ms.bfloat16
        got = as_float32(got)
        assert relative_error(np.moveaxis(got, -1, 1) if channels_last[1] else got, want) < CONV_TOLERANCE


@needs_bf16
@pytest.mark.parametrize("groups, stride", [(8, 1), (32, 2)])
def test_fused_grouped_conv_bf16_matches_float64(groups, stride):
    w, b, x, ref = grouped_case(groups, stride)
    bf16 = FusedConv3d(w, b, stride, 1, relu=True, groups=groups, dtype=ms.bfloat16, channels_last=(True, True))
    got = as_float32(bf16(Tensor(ndhwc(x)).astype(ms.bfloat16)))
    assert relative_error(np.moveaxis(got, -1, 1), ref) < CONV_TOLERANCE


@needs_bf16
@pytest.mark.parametrize("dtype", [ms.bfloat16, ms.float32])
def test_max_pool_bf16_and_channels_last_are_exact(dtype):
    from src.ops.fast_pool3d import FastMaxPool3d

    x = np.random.default_rng(1).standard_normal((2, 4, 5, 9, 9)).astype(np.float32)
    x[0, 1, 2, 3, 4] = np.nan  # propagates, as in PyTorch
    x = Tensor(x).astype(ms.bfloat16).astype(ms.float32).asnumpy()  # values bfloat16 can hold
    want = FastMaxPool3d(3, 2, 1, training=False)(Tensor(x)).asnumpy()
    got = FastMaxPool3d(3, 2, 1, training=False, dtype=dtype)(Tensor(x).astype(dtype))
    assert got.dtype == dtype
    np.testing.assert_array_equal(as_float32(got), want)
    got = FastMaxPool3d(3, 2, 1, training=False, dtype=dtype, channels_last=True)(Tensor(ndhwc(x)).astype(dtype))
    np.testing.assert_array_equal(np.moveaxis(as_float32(got), -1, 1), want)


@needs_bf16
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_bf16_network_matches_fp32(config):
    net = trained_like(config, conv_impl="fast")
    x = clip()
    want = inference_network(net, "fast", "fp32")(x).asnumpy()
    folded = inference_network(net, "fast", "bf16")
    got = folded(x)
    assert got.dtype == ms.float32
    error = relative_error(got.asnumpy(), want)
    print(f"{config}: logits relative error {error:.4f}")
    assert error < LOGITS_TOLERANCE
    # bfloat16 from the stem to the last block: every convolution writes bfloat16
    convs = [c for c in folded.cells_and_names() if isinstance(c[1], FusedConv3d)]
    assert convs and all(c.dtype == ms.bfloat16 for _, c in convs)
    assert any(isinstance(c, FoldedBlock) for _, c in folded.cells_and_names())


@needs_bf16
def test_bf16_top1_agrees_on_a_confident_model(tmp_path):
    """A checkpoint with confident predictions (tests/toy.py): the same top-1 on 16 clips."""
    from src.weights.checkpoint import load_strict

    ckpt = make_tiny_checkpoint(tmp_path / "m.ckpt", seed=3)
    net = generate_model(10, widen_factor=0.125, n_classes=8, conv_impl="fast")
    load_strict(net, ckpt)
    net.set_train(False)
    x = Tensor(np.random.default_rng(2).standard_normal((16, 3, 4, 32, 32)).astype(np.float32))
    want = inference_network(net, "fast", "fp32")(x).asnumpy()
    got = inference_network(net, "fast", "bf16")(x).asnumpy()
    error = relative_error(got, want)
    print(f"confident model: logits relative error {error:.4f}, top-1 agreement "
          f"{(got.argmax(1) == want.argmax(1)).mean():.0%}")
    assert error < LOGITS_TOLERANCE
    assert (got.argmax(1) == want.argmax(1)).all()


def test_bf16_needs_the_fused_op():
    net = trained_like("basic_B")
    with pytest.raises(UserError, match="needs the fused oneDNN op"):
        inference_network(net, "native", "bf16")


def test_eval_refuses_bf16_off_the_fused_path_with_one_line(tmp_path, capsys):
    """Native convolutions cannot run BF16 on any CPU: one error line, exit 2, before any evaluation.
    (--cpu_isa_cap=off: the AVX2 cap would last for the rest of this test process.)"""
    ckpt = make_tiny_checkpoint(tmp_path / "m.ckpt")
    code = eval_script.main(tiny_options() + ["--device_target=CPU", "--conv_impl=native", "--cpu_isa_cap=off",
                                           "--infer_precision=bf16",
                                           f"--inference_ckpt_path={ckpt}", f"--result_path={tmp_path}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error: --infer_precision=bf16: our oneDNN op is not running")


@needs_bf16
def test_eval_bf16_equals_fp32_predictions(tmp_path, capsys):
    """eval.py --infer_precision=bf16 (and auto, which is bf16 here): the runtime line says BF16, every clip
    gets the FP32 prediction, scores within 1e-2."""
    import json

    from tests.helpers.tiny import make_tiny_dataset as make_dataset

    jpg, ann = make_dataset(tmp_path / "data")
    ckpt = make_tiny_checkpoint(tmp_path / "m.ckpt", seed=4)
    args = tiny_options() + ["--device_target=CPU", f"--video_path={jpg}", f"--annotation_path={ann}",
                          f"--inference_ckpt_path={ckpt}"]
    clips = {}
    for precision in ("fp32", "bf16", "auto"):
        out = tmp_path / precision
        assert eval_script.main(args + [f"--infer_precision={precision}", f"--result_path={out}"]) == 0
        said = capsys.readouterr().err  # eval.py names the runtime in its "evaluating ..." line
        assert ("inference in BF16" in said) is (precision != "fp32")
        clips[precision] = json.loads((out / "ucf101_eval_clips.json").read_text())
    for precision in ("bf16", "auto"):
        assert [c["pred"] for c in clips[precision]] == [c["pred"] for c in clips["fp32"]]
        np.testing.assert_allclose([c["score"] for c in clips[precision]], [c["score"] for c in clips["fp32"]],
                                   atol=1e-2)
