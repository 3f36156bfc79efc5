"""src/models/resnet3d.py: every depth and shortcut builds and runs; upstream parity from converted weights."""
import numpy as np
import pytest
import torch

import mindspore as ms
from src.errors import UserError
from src.models.resnet3d import ARCHITECTURES, generate_model
from src.weights.naming import rename_state_dict
from tests.helpers.torch_reference import TorchResNet3D, randomize


@pytest.mark.parametrize("depth", sorted(ARCHITECTURES))
@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_output_shape_every_depth(depth, shortcut):
    net = generate_model(depth, n_classes=5, widen_factor=0.0625, resnet_shortcut=shortcut)
    net.set_train(False)
    out = net(ms.Tensor(np.random.rand(2, 3, 4, 32, 32).astype(np.float32)))
    assert out.shape == (2, 5)


def test_unsupported_depth_is_a_clear_error():
    with pytest.raises(UserError, match="model_depth 20 is not supported; choose one of 10, 18, 34, 50"):
        generate_model(20)


def _load_torch_weights(net, tmodel):
    params, unknown = rename_state_dict(tmodel.state_dict())
    assert not unknown
    ms.load_param_into_net(net, {k: ms.Parameter(ms.Tensor(v.numpy())) for k, v in params.items()},
                           strict_load=True)


@pytest.mark.parametrize("kw", [dict(conv1_t_size=3, conv1_t_stride=2), dict(no_max_pool=True),
                                dict(n_input_channels=1, conv1_t_size=1)])
def test_stem_options_match_upstream(kw):
    tmodel = randomize(TorchResNet3D(18, n_classes=6, widen_factor=0.25, **kw), seed=3)
    net = generate_model(18, n_classes=6, widen_factor=0.25, **kw)
    _load_torch_weights(net, tmodel)
    net.set_train(False)
    x = np.random.RandomState(0).randn(2, kw.get("n_input_channels", 3), 8, 48, 48).astype(np.float32)
    with torch.no_grad():
        ref = tmodel(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net(ms.Tensor(x)).asnumpy(), ref, atol=1e-4, rtol=0)


def test_graph_mode_matches_pynative(graph_mode):
    tmodel = randomize(TorchResNet3D(10, n_classes=4, widen_factor=0.25), seed=1)
    net = generate_model(10, n_classes=4, widen_factor=0.25)
    _load_torch_weights(net, tmodel)
    net.set_train(False)
    x = np.random.RandomState(1).randn(1, 3, 8, 32, 32).astype(np.float32)
    with torch.no_grad():
        ref = tmodel(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net(ms.Tensor(x)).asnumpy(), ref, atol=1e-4, rtol=0)


def test_original_port_checkpoint_naming_loads(tmp_path):
    """A checkpoint written in the original MindSpore port's naming (bnX.bn2d.*, downsample.0/1) loads strictly."""
    from src.weights.checkpoint import load_strict

    names = ["conv1.weight", "bn1.bn2d.gamma", "bn1.bn2d.beta", "bn1.bn2d.moving_mean", "bn1.bn2d.moving_variance",
             "layer1.0.conv1.weight", "layer1.0.downsample.0.weight", "layer1.0.downsample.1.bn2d.gamma",
             "layer4.2.bn3.bn2d.moving_variance", "fc.weight", "fc.bias"]
    net = generate_model(50, n_classes=101, widen_factor=0.125)
    ours = {p.name: p for p in net.get_parameters()}
    assert set(names) <= set(ours)
    # a training checkpoint of the original also carries optimiser state: it must be ignored
    entries = [{"name": p.name, "data": ms.Tensor(np.full(p.shape, 0.5, np.float32))} for p in ours.values()]
    entries += [{"name": "moments.conv1.weight", "data": ms.Tensor(np.zeros(ours["conv1.weight"].shape, np.float32))},
                {"name": "learning_rate", "data": ms.Tensor(np.float32(0.1))},
                {"name": "global_step", "data": ms.Tensor(np.int32(10))}]
    path = tmp_path / "original.ckpt"
    ms.save_checkpoint(entries, str(path))
    fresh = generate_model(50, n_classes=101, widen_factor=0.125)
    load_strict(fresh, path)
    assert np.all(fresh.layer4[2].bn3.bn2d.moving_variance.asnumpy() == 0.5)
