"""src/models/inference.py: the BN-folded, fused inference network against the unfused eval-mode
network, for every block type, shortcut and stem, with the fused oneDNN op and with the native
fallback; plus the fallback when the op is not built and the weight-snapshot behaviour."""
import gc
import logging

import numpy as np
import pytest

import mindspore as ms
from mindspore import Tensor

from src.errors import UserError
from src.models.inference import fold_batch_norm, inference_network
from src.models.resnet3d import generate_model
from src.ops.paths import LIBRARY_ENV
from tests.helpers.nets import relative_error

try:
    from src.ops.fused_conv3d import infer_counts, status
    AVAILABLE, REASON = status()
except ImportError as err:  # pragma: no cover - the module imports MindSpore only
    AVAILABLE, REASON = False, str(err)
needs_op = pytest.mark.skipif(not AVAILABLE, reason=f"fused conv op unavailable: {REASON}")
FOLD_TOLERANCE = 1e-5

# name: generate_model kwargs (tiny widths; depth 10 = basic blocks, depth 50 = bottlenecks)
CONFIGS = {
    "basic_B": dict(model_depth=10, resnet_shortcut="B"),
    "basic_A": dict(model_depth=10, resnet_shortcut="A"),
    "bottleneck_B": dict(model_depth=50, resnet_shortcut="B"),
    "bottleneck_A": dict(model_depth=50, resnet_shortcut="A"),
    "stem_t3": dict(model_depth=10, conv1_t_size=3),
    "stem_t1": dict(model_depth=10, conv1_t_size=1),
    "stem_t_stride2": dict(model_depth=10, conv1_t_stride=2),
    "no_max_pool": dict(model_depth=10, no_max_pool=True),
}
CLIP = (2, 3, 8, 32, 32)


def randomize_batch_norm(net, seed):
    """Non-trivial BN statistics and affine terms, so that folding them is really tested."""
    rng = np.random.default_rng(seed)
    for p in net.get_parameters():
        if p.name.endswith(("moving_mean", "beta")):
            p.set_data(Tensor(rng.normal(0, 0.2, p.shape).astype(np.float32)))
        elif p.name.endswith(("moving_variance", "gamma")):
            p.set_data(Tensor(rng.uniform(0.5, 2.0, p.shape).astype(np.float32)))


def trained_like(config, conv_impl="native", seed=0):
    ms.set_seed(seed)
    kw = dict(CONFIGS[config])
    net = generate_model(kw.pop("model_depth"), widen_factor=0.125, n_classes=7, conv_impl=conv_impl, **kw)
    randomize_batch_norm(net, seed)
    net.set_train(False)
    return net


def clip(seed=1):
    return Tensor(np.random.default_rng(seed).standard_normal(CLIP).astype(np.float32))


@pytest.mark.parametrize("impl", [pytest.param("fast", marks=needs_op), "native"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_logits_match_unfused_network(config, impl, graph_mode):
    net = trained_like(config)
    x = clip()
    reference = net(x).asnumpy()
    folded = inference_network(net, impl)
    assert folded.conv_impl == impl
    got = folded(x).asnumpy()
    assert got.shape == reference.shape
    assert relative_error(got, reference) <= FOLD_TOLERANCE, f"{config} {impl}: {relative_error(got, reference):.2e}"


@needs_op
def test_fused_from_a_fast_conv_network_in_pynative():
    net = trained_like("bottleneck_B", conv_impl="fast", seed=2)
    x = clip(3)
    assert relative_error(inference_network(net, "fast")(x).asnumpy(), net(x).asnumpy()) <= FOLD_TOLERANCE


@needs_op
def test_one_fused_call_per_convolution_and_weights_released(graph_mode):
    net = trained_like("basic_B")  # stem, 4 blocks x 2, 3 downsample convs
    folded = inference_network(net, "fast")
    x = clip()
    folded(x).asnumpy()
    before = infer_counts()
    folded(x).asnumpy()
    after = infer_counts()
    assert after["calls"] - before["calls"] == 12
    assert after["handles"] == before["handles"]  # nothing prepared again per call
    del folded
    gc.collect()
    assert infer_counts()["handles"] == before["handles"] - 12


@needs_op
def test_two_inference_networks_keep_their_own_weights(graph_mode):
    x = clip()
    nets = [trained_like("basic_B", seed=s) for s in (4, 5)]
    refs = [n(x).asnumpy() for n in nets]
    assert relative_error(refs[0], refs[1]) > 1e-2
    folded = [inference_network(n, "fast") for n in nets]
    for f, ref in zip(folded, refs):
        assert relative_error(f(x).asnumpy(), ref) <= FOLD_TOLERANCE


def test_weights_are_a_snapshot_taken_at_build_time():
    net = trained_like("basic_B")
    x = clip()
    folded = inference_network(net, "native")
    before = folded(x).asnumpy()
    for p in net.get_parameters():
        p.set_data(Tensor(np.zeros(p.shape, np.float32)))
    assert np.array_equal(folded(x).asnumpy(), before)


def test_fold_batch_norm_equals_conv_then_bn():
    net = trained_like("basic_B", seed=6)
    x = Tensor(np.random.default_rng(7).standard_normal((1, 3, 4, 16, 16)).astype(np.float32))
    reference = net.bn1(net.conv1(x)).asnumpy()
    weight, bias = fold_batch_norm(net.conv1, net.bn1)
    conv = ms.ops.Conv3D(weight.shape[0], weight.shape[2:], stride=(1, 2, 2), pad_mode="pad",
                         pad=(3, 3, 3, 3, 3, 3))
    got = conv(x, Tensor(weight)).asnumpy() + bias.reshape(1, -1, 1, 1, 1)
    assert relative_error(got, reference) <= FOLD_TOLERANCE


def test_falls_back_to_native_when_the_op_is_not_built(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv(LIBRARY_ENV, str(tmp_path / "missing.so"))
    net = trained_like("basic_A")
    x = clip()
    with caplog.at_level(logging.INFO, logger="resnet3d"):
        folded = inference_network(net, "fast")
    assert folded.conv_impl == "native"
    assert "native Conv3d with bias + ReLU" in caplog.text and "missing.so" in caplog.text
    assert relative_error(folded(x).asnumpy(), net(x).asnumpy()) <= FOLD_TOLERANCE


@needs_op
def test_log_line_names_the_fused_op_once(caplog, monkeypatch):
    from src.models import inference

    monkeypatch.setattr(inference, "_said", set())  # as in a new process
    with caplog.at_level(logging.INFO, logger="resnet3d"):
        inference_network(trained_like("basic_B"), "auto")
        inference_network(trained_like("basic_B"), "auto")  # in-training evaluation builds one per epoch
    assert caplog.text.count("fused in the oneDNN op") == 1


def test_bad_arguments_are_user_errors():
    with pytest.raises(UserError, match="needs a ResNet3D"):
        inference_network(ms.nn.Dense(3, 4), "native")
    with pytest.raises(UserError, match="conv_impl 'gpu'"):
        inference_network(trained_like("basic_B"), "gpu")
