"""The fast max-pool (src/ops/fast_pool3d.py) against PyTorch's max_pool3d: values and gradients
bit for bit (a max-pool only selects and adds), with ties, NaN, odd sizes and both modes; and that the
models use it exactly when they use the fast convolution."""
import numpy as np
import pytest
import torch

from mindspore import Tensor, nn, ops

from src.models.inference import inference_network
from src.models.resnet3d import generate_model
from src.ops import fast_conv3d_status
from src.ops import fast_pool3d as fp

AVAILABLE, REASON = fast_conv3d_status()
needs_op = pytest.mark.skipif(not AVAILABLE, reason=f"fast conv op unavailable: {REASON}")

# (kernel, stride, padding, input shape)
CASES = {
    "model": (3, 2, 1, (2, 3, 7, 11, 10)),
    "kernel2_no_pad": (2, 2, 0, (1, 2, 4, 6, 5)),
    "stride1": (3, 1, 1, (1, 2, 3, 5, 4)),
    "anisotropic": ((1, 3, 3), (1, 2, 2), (0, 1, 1), (2, 2, 3, 9, 9)),
}


class DotLoss(nn.Cell):
    def __init__(self, pool, dy):
        super().__init__()
        self.pool, self.dy = pool, Tensor(dy)

    def construct(self, x):
        return (self.pool(x) * self.dy).sum()


class Grad(nn.Cell):
    def __init__(self, net):
        super().__init__()
        self.net, self.grad = net, ops.GradOperation()

    def construct(self, x):
        return self.grad(self.net)(x)


def case_input(shape, seed=0):
    """ReLU'd normals (many equal zeros, as the model's pool sees) plus a NaN and a -inf."""
    rng = np.random.default_rng(seed)
    x = np.maximum(rng.standard_normal(shape).astype(np.float32), 0)
    x.flat[5] = np.nan
    x.flat[-3] = -np.inf
    return x


@needs_op
@pytest.mark.parametrize("mode", ["pynative", "graph"])
@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch_exactly(name, mode, request):
    if mode == "graph":
        request.getfixturevalue("graph_mode")
    k, s, p, shape = CASES[name]
    x = case_input(shape)
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch.nn.functional.max_pool3d(tx, k, s, p)
    dy = np.random.default_rng(1).standard_normal(ty.shape).astype(np.float32)
    ty.backward(torch.from_numpy(dy))

    pool = fp.FastMaxPool3d(k, s, p)
    np.testing.assert_array_equal(pool(Tensor(x)).asnumpy(), ty.detach().numpy())
    np.testing.assert_array_equal(Grad(DotLoss(pool, dy))(Tensor(x)).asnumpy(), tx.grad.numpy())
    np.testing.assert_array_equal(fp.FastMaxPool3d(k, s, p, training=False)(Tensor(x)).asnumpy(),
                                  ty.detach().numpy())


@needs_op
def test_padding_over_half_the_kernel_is_refused():
    with pytest.raises(ValueError, match="padding"):
        fp.FastMaxPool3d(3, 2, 2)


@needs_op
def test_models_use_it_with_the_fast_convolution():
    kwargs = dict(widen_factor=0.125, n_classes=3, conv1_t_size=3)
    x = Tensor(np.random.default_rng(2).standard_normal((1, 3, 4, 16, 16)).astype(np.float32))
    nets = {impl: generate_model(10, conv_impl=impl, **kwargs) for impl in ("fast", "native")}
    assert isinstance(nets["fast"].maxpool.pool, fp.FastMaxPool3d)
    assert isinstance(nets["native"].maxpool.pool, nn.MaxPool3d)
    nets["native"].set_train(False)
    folded = inference_network(nets["native"], "fast")
    assert isinstance(folded.maxpool.pool, fp.FastMaxPool3d) and not folded.maxpool.pool.training_op
    before = fp.pool_counts()
    folded(x)
    assert fp.pool_counts()["fwd"] == before["fwd"] + 1
