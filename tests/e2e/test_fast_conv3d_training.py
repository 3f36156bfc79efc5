"""A whole training step (forward, backward, SGD) of a ResNet-10 with the fast CPU convolution equals the
native one, and calls each fast kernel the expected number of times. (The op-level checks are in
tests/unit/test_fast_conv3d.py.)"""
import numpy as np
import pytest

from mindspore import Tensor, nn

from src.ops import fast_conv3d as fc
from src.ops import fast_conv3d_status
from tests.helpers.nets import copy_parameters, relative_error, seeded_resnet10

AVAILABLE, REASON = fast_conv3d_status()
needs_op = pytest.mark.skipif(not AVAILABLE, reason=f"fast conv op unavailable: {REASON}")


@needs_op
@pytest.mark.slow
def test_training_step_fast_equals_native(graph_mode):
    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((4, 3, 8, 48, 48)).astype(np.float32))
    y = Tensor(np.array([1, 3, 0, 4], np.int32))
    nets = {impl: seeded_resnet10(impl) for impl in ("fast", "native")}
    copy_parameters(nets["native"], nets["fast"])
    start = {p.name: p.asnumpy().copy() for p in nets["native"].get_parameters()}
    before = fc.call_counts()
    after_step = {}
    for impl, net in nets.items():
        loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
        step = nn.TrainOneStepCell(nn.WithLossCell(net, loss), nn.SGD(net.trainable_params(), 0.1, 0.9))
        step.set_train()
        step(x, y)
        after_step[impl] = {p.name: p.asnumpy().copy() for p in net.get_parameters()}
        if impl == "fast":
            counts = {k: v - before[k] for k, v in fc.call_counts().items()}
    n_convs = 12  # stem, 4 blocks x 2, 3 downsample
    # MindSpore prunes the unused input gradient of the stem: one fewer backward-data call
    # the stem's 16 output channels are too few for its own backward-weights kernel (needs 32)
    assert counts == {"fwd": n_convs, "bwd_data": n_convs - 1, "bwd_weights": n_convs, "stem_bwd_weights": 0,
                      "bf16_fallbacks": 0}  # an FP32 step: no BF16 pass, so none falls back
    # compare the SGD updates; BN gamma/beta gradients are sums with cancellation, so float32
    # summation order alone moves them by ~1e-5 (test_gradients.py judges against float64)
    errors = {name: relative_error(after_step["fast"][name] - start[name], value - start[name])
              for name, value in after_step["native"].items() if "moving" not in name}
    assert np.median(list(errors.values())) < 2e-5, errors
    assert max(errors.values()) < 3e-4, errors
