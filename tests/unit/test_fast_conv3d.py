"""The fast CPU 3-D convolution (src/ops): against a float64 PyTorch reference and MindSpore's native
Conv3d, forward and both gradients, one op and whole networks, plus the fallback when it is absent;
and the fused inference op (conv + bias, residual add, ReLU) against the same reference."""
import numpy as np
import pytest
import torch

import mindspore as ms
from mindspore import Tensor, nn

from src.runtime import resolve_conv_impl
from src.models.resnet3d import _native_conv3d, generate_model
from src.ops import fast_conv3d_status
from src.ops import fast_conv3d as fc
from src.ops.paths import LIBRARY_ENV
from tests.helpers.nets import grouped_case, relative_error, seeded_resnet10

AVAILABLE, REASON = fast_conv3d_status()
needs_op = pytest.mark.skipif(not AVAILABLE, reason=f"fast conv op unavailable: {REASON}")

# (in, out, kernel, stride, padding, dilation, input shape): odd sizes, strides 1/2, the stem
CASES = {
    "stem": (3, 8, (7, 7, 7), (1, 2, 2), (3, 3, 3), 1, (2, 3, 9, 21, 23)),
    # 32 output channels: the stem's own backward-weights kernel (src/ops/csrc/stem_bwd_weights.cc)
    "stem_own_dw": (3, 32, (7, 7, 7), (1, 2, 2), (3, 3, 3), 1, (2, 3, 9, 21, 23)),
    "stem_own_dw_t3": (3, 32, (3, 7, 7), (2, 2, 2), (1, 3, 3), 1, (3, 3, 7, 20, 17)),
    "3x3x3_s1": (5, 6, 3, 1, 1, 1, (2, 5, 5, 9, 7)),
    "3x3x3_s2": (8, 16, 3, 2, 1, 1, (2, 8, 5, 11, 13)),
    "1x1x1_s2": (6, 12, 1, 2, 0, 1, (1, 6, 5, 7, 9)),
    "1x1x1_s1": (16, 8, 1, 1, 0, 1, (1, 16, 3, 5, 5)),
    "dilated": (4, 4, 3, 1, 2, 2, (1, 4, 6, 8, 7)),
}


class DotLoss(nn.Cell):
    """sum(conv(x) * dy): its gradients are the convolution's dx and dw for output gradient dy."""

    def __init__(self, conv, dy):
        super().__init__()
        self.conv = conv
        self.dy = Tensor(dy)

    def construct(self, x):
        return (self.conv(x) * self.dy).sum()


def run_ms(conv, x, dy):
    y = conv(Tensor(x)).asnumpy()
    dx, (dw,) = ms.grad(DotLoss(conv, dy), grad_position=0, weights=conv.trainable_params())(Tensor(x))
    return y, dx.asnumpy(), dw.asnumpy()


def run_torch64(x, w, dy, stride, padding, dilation):
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tw = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    y = torch.nn.functional.conv3d(tx, tw, stride=stride, padding=padding, dilation=dilation)
    y.backward(torch.tensor(dy, dtype=torch.float64))
    return y.detach().numpy(), tx.grad.numpy(), tw.grad.numpy()


def make_case(name, seed=0):
    cin, cout, k, s, p, d, shape = CASES[name]
    conv = fc.FastConv3d(cin, cout, k, s, p, d)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    y_shape = conv(Tensor(x)).shape
    dy = rng.standard_normal(y_shape).astype(np.float32)
    return conv, x, dy, (s, p, d)


@needs_op
@pytest.mark.parametrize("mode", ["pynative", "graph"])
@pytest.mark.parametrize("name", list(CASES))
def test_matches_float64_reference(name, mode, request):
    if mode == "graph":
        request.getfixturevalue("graph_mode")
    conv, x, dy, (s, p, d) = make_case(name)
    before = fc.call_counts()["stem_bwd_weights"]
    got = run_ms(conv, x, dy)
    assert fc.call_counts()["stem_bwd_weights"] - before == (1 if "own_dw" in name else 0)
    ref = run_torch64(x, conv.weight.asnumpy(), dy, s, p, d)
    for what, a, b in zip(("y", "dx", "dw"), got, ref):
        assert a.shape == b.shape, what
        assert relative_error(a, b) < 5e-6, f"{name} {what}: {relative_error(a, b):.2e}"


@needs_op
@pytest.mark.parametrize("name", ["stem", "3x3x3_s2", "1x1x1_s2"])
def test_matches_native_conv(name):
    conv, x, dy, (s, p, d) = make_case(name, seed=1)
    cin, cout, k = CASES[name][:3]
    native = _native_conv3d(cin, cout, k, s, p)
    native.weight.set_data(conv.weight.data)
    for what, a, b in zip(("y", "dx", "dw"), run_ms(conv, x, dy), run_ms(native, x, dy)):
        assert relative_error(a, b) < 5e-6, f"{name} {what}: {relative_error(a, b):.2e}"


@needs_op
def test_parameter_name_shape_and_init_match_native():
    fast, native = fc.FastConv3d(16, 32, 3, 2, 1), _native_conv3d(16, 32, 3, 2, 1)
    (pf,), (pn,) = fast.get_parameters(), native.get_parameters()
    assert pf.name == pn.name == "weight" and pf.shape == pn.shape == (32, 16, 3, 3, 3)
    fan_out_std = np.sqrt(2.0 / (32 * 27))
    assert abs(pf.asnumpy().std() / fan_out_std - 1) < 0.1


class ThreeConvs(nn.Cell):
    """A dw-only stem first, then two convs with other strides: in GRAPH mode a bprop shared
    between Custom variants would zero dx of the later convs or use the wrong geometry."""

    def __init__(self, dy):
        super().__init__()
        self.stem = fc.FastConv3d(3, 4, (3, 5, 5), (1, 2, 2), (1, 2, 2), input_grad=False)
        self.conv2 = fc.FastConv3d(4, 6, 3, 2, 1)
        self.conv3 = fc.FastConv3d(6, 6, 1, 1, 0)
        self.relu = nn.ReLU()
        self.dy = Tensor(dy)

    def construct(self, x):
        return (self.conv3(self.relu(self.conv2(self.relu(self.stem(x))))) * self.dy).sum()


@needs_op
def test_variants_keep_their_own_gradients_in_graph_mode(graph_mode):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 5, 12, 11)).astype(np.float32)
    dy = rng.standard_normal((2, 6, 3, 3, 3)).astype(np.float32)
    net = ThreeConvs(dy)
    dx, grads = ms.grad(net, grad_position=0, weights=net.trainable_params())(Tensor(x))
    assert not dx.asnumpy().any()  # the stem variant skips dx by design

    tx = torch.tensor(x, dtype=torch.float64)
    ws = [torch.tensor(c.weight.asnumpy(), dtype=torch.float64, requires_grad=True)
          for c in (net.stem, net.conv2, net.conv3)]
    out = torch.relu(torch.nn.functional.conv3d(tx, ws[0], stride=(1, 2, 2), padding=(1, 2, 2)))
    out = torch.relu(torch.nn.functional.conv3d(out, ws[1], stride=2, padding=1))
    (torch.nn.functional.conv3d(out, ws[2]) * torch.tensor(dy, dtype=torch.float64)).sum().backward()
    for g, w in zip(grads, ws):
        assert relative_error(g.asnumpy(), w.grad.numpy()) < 5e-6


@needs_op
def test_whole_net_forward_fast_equals_native_from_checkpoint(tmp_path):
    native, fast = seeded_resnet10("native", seed=1), seeded_resnet10("fast", seed=2)
    ckpt = str(tmp_path / "native.ckpt")
    ms.save_checkpoint(native, ckpt)
    assert not ms.load_param_into_net(fast, ms.load_checkpoint(ckpt))[0]  # no parameter left out
    native.set_train(False)
    fast.set_train(False)
    x = Tensor(np.random.default_rng(4).standard_normal((2, 3, 8, 32, 32)).astype(np.float32))
    assert relative_error(fast(x).asnumpy(), native(x).asnumpy()) < 1e-5


def test_fallback_when_library_is_absent(monkeypatch, tmp_path):
    monkeypatch.setenv(LIBRARY_ENV, str(tmp_path / "missing.so"))
    available, reason = fast_conv3d_status()
    assert not available and "missing.so" in reason
    assert resolve_conv_impl("CPU", "auto") == "native"
    assert resolve_conv_impl("CPU", "fast") == "native"
    with pytest.raises(RuntimeError, match="unavailable"):
        fc.FastConv3d(3, 4, 3)


def test_fallback_when_library_is_not_loadable(monkeypatch, tmp_path):
    broken = tmp_path / "broken.so"
    broken.write_text("not a shared library")
    monkeypatch.setenv(LIBRARY_ENV, str(broken))
    assert fast_conv3d_status()[0] is False
    assert resolve_conv_impl("CPU", "auto") == "native"


def test_failed_build_warns_and_succeeds(monkeypatch, tmp_path, capsys):
    from src.ops import build

    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.delenv("CI", raising=False)  # CI=true makes a failed build an error (tests/unit/test_ops_build.py)
    monkeypatch.delenv("STRICT", raising=False)
    monkeypatch.setattr(build, "default_library_path", lambda: tmp_path / "lib.so")
    assert build.main([]) == 0
    err = capsys.readouterr().err
    assert err.count("WARNING") == 1 and "native convolutions" in err
    assert not (tmp_path / "lib.so").exists()


# fused inference op (src/ops/fused_conv3d.py): conv + bias [+ residual] [+ relu] in one primitive
FUSED_VARIANTS = {"bias": (False, False), "bias_relu": (True, False), "bias_add_relu": (True, True),
                  "bias_add": (False, True)}


def fused_case(name, variant, seed=5):
    from src.ops.fused_conv3d import FusedConv3d

    cin, cout, k, s, p, d, shape = CASES[name]
    relu, residual = FUSED_VARIANTS[variant]
    rng = np.random.default_rng(seed)
    k3 = fc.triple(k)
    w = rng.standard_normal((cout, cin, *k3)).astype(np.float32) / np.sqrt(cin * np.prod(k3))
    b = rng.standard_normal(cout).astype(np.float32)
    x = rng.standard_normal(shape).astype(np.float32)
    conv = FusedConv3d(w, b, s, p, d, relu=relu, residual=residual)
    ref = torch.nn.functional.conv3d(torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64),
                                     torch.tensor(b, dtype=torch.float64), stride=s, padding=p, dilation=d)
    res = rng.standard_normal(ref.shape).astype(np.float32) if residual else None
    if residual:
        ref = ref + torch.tensor(res, dtype=torch.float64)
    if relu:
        ref = torch.relu(ref)
    return conv, x, res, ref.numpy()


@needs_op
@pytest.mark.parametrize("variant", list(FUSED_VARIANTS))
@pytest.mark.parametrize("name", list(CASES))
def test_fused_inference_op_matches_float64_reference(name, variant):
    conv, x, res, ref = fused_case(name, variant)
    got = (conv(Tensor(x), Tensor(res)) if res is not None else conv(Tensor(x))).asnumpy()
    assert got.shape == ref.shape
    assert relative_error(got, ref) < 5e-6, f"{name} {variant}: {relative_error(got, ref):.2e}"
    if FUSED_VARIANTS[variant][0]:
        assert got.min() == 0.0


@needs_op
def test_fused_inference_op_in_graph_mode_with_other_batch_sizes(graph_mode):
    # a new input shape -> a new primitive; the weights' blocked copy is derived from the first one
    conv, x, res, _ = fused_case("3x3x3_s2", "bias_add_relu")
    conv(Tensor(x), Tensor(res)).asnumpy()
    x4 = np.concatenate([x, x[::-1]])
    res4 = np.concatenate([res, res[::-1]])
    got = conv(Tensor(x4), Tensor(res4)).asnumpy()
    assert relative_error(got[:2], conv(Tensor(x), Tensor(res)).asnumpy()) < 1e-6
    assert relative_error(got[2:], got[1::-1]) < 1e-6


@needs_op
@pytest.mark.parametrize("groups, stride", [(8, 1), (32, 2), (4, 2)])
def test_fused_grouped_convolution_is_one_primitive_matching_float64(groups, stride):
    from src.ops.fused_conv3d import FusedConv3d, infer_counts

    w, b, x, ref = grouped_case(groups, stride)
    conv = FusedConv3d(w, b, stride, 1, relu=True, groups=groups)
    before = infer_counts()["calls"]
    got = conv(Tensor(x)).asnumpy()
    assert infer_counts()["calls"] == before + 1  # one call, not one per group
    assert got.shape == ref.shape and relative_error(got, ref) < 5e-6
    with pytest.raises(ValueError, match="divisible by groups"):
        FusedConv3d(w[:30], b[:30], stride, 1, groups=groups)  # 30 output channels


@needs_op
def test_fused_probe_makes_the_plan_and_the_weights_come_back():
    """probe(): the output shape and no refusal (oneDNN accepts the fused form), the plan made before the
    first call; plain_weights(): the given weights, also once the library keeps only its blocked copy."""
    from src.ops.fused_conv3d import FusedConv3d, infer_counts

    conv, x, res, ref = fused_case("3x3x3_s2", "bias_add_relu", seed=8)
    before = infer_counts()["calls"]
    shape, refusal = conv.probe(list(x.shape))
    assert refusal is None and shape == list(ref.shape) and infer_counts()["calls"] == before
    got = conv(Tensor(x), Tensor(res)).asnumpy()
    assert relative_error(got, ref) < 5e-6
    w, b = conv.plain_weights()  # from the blocked copy now
    twin = FusedConv3d(w, b, conv.stride, conv.padding, relu=True, residual=True)
    np.testing.assert_array_equal(twin.plain_weights()[0], w)  # from the plain copy (not run yet)
    np.testing.assert_array_equal(twin(Tensor(x), Tensor(res)).asnumpy(), got)
    grouped = FusedConv3d(np.ones((8, 2, 3, 3, 3), np.float32), np.arange(8, dtype=np.float32), groups=4)
    assert grouped.plain_weights()[0].shape == (8, 2, 3, 3, 3)


def test_fused_inference_op_refuses_when_library_is_absent(monkeypatch, tmp_path):
    from src.ops.fused_conv3d import FusedConv3d

    monkeypatch.setenv(LIBRARY_ENV, str(tmp_path / "missing.so"))
    with pytest.raises(RuntimeError, match="unavailable"):
        FusedConv3d(np.zeros((4, 3, 1, 1, 1), np.float32), np.zeros(4, np.float32))


def test_two_networks_on_one_input_shape_in_pynative():
    """PyNative caches a Custom op's inferred output shape by its inputs' shapes: convolutions of another
    geometry on the same input (another network's stem) must still get their own output shape."""
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 8, 32, 32)).astype(np.float32))
    a = generate_model(50, widen_factor=0.125, n_classes=7, conv_impl="fast")
    b = generate_model(10, widen_factor=0.25, n_classes=5, conv_impl="fast")
    a.set_train(False)
    b.set_train(False)
    assert a(x).shape == (2, 7) and b(x).shape == (2, 5)
