"""src/deploy/cam.py: the gradient Grad-CAM uses against finite differences, the map's formula, the trilinear
resize against torch's, the class choice and the frames a clip was made from."""
import mindspore as ms
import numpy as np
import pytest
import torch

from src.data.spatial import normalize_clip
from src.deploy.cam import STAGES, StageSplit, class_index, clip_frames, grad_cam, resize_volume, stage_gradients
from src.errors import UserError
from src.models.factory import ModelSpec, build_model

TINY_SPEC = ModelSpec(model="resnet", model_depth=10, widen_factor=0.125, n_classes=8)


def _tiny_net(seed=0):
    ms.set_seed(seed)
    net = build_model(TINY_SPEC)
    net.set_train(False)
    return net


def _clips(n=1, seed=0, shape=(3, 4, 32, 32)):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32)


@pytest.mark.parametrize("stage", ["layer1", "layer3"])
def test_stage_gradient_matches_central_differences(stage):
    """d score / dA from MindSpore against (f(A + eps e_i) - f(A - eps e_i)) / 2 eps at eps 1e-3, for the 4
    entries of the largest gradient and 4 random ones. The head is piecewise linear in A (at eps 1e-2 some
    entries cross a ReLU kink), so float32 rounding is what separates them: measured, the largest
    |numeric - MindSpore| is 6.5e-4 (layer1) and 1.1e-4 (layer3) of the largest gradient (0.071, 0.160);
    asserted: 2e-3 of it."""
    net, clip, c = _tiny_net(), _clips(), 3
    split = StageSplit(net, stage)
    activation, gradient, logits = stage_gradients(split, clip, c)
    np.testing.assert_allclose(logits, net(ms.Tensor(clip)).asnumpy(), rtol=1e-5, atol=1e-6)
    flat = np.abs(gradient).ravel()
    picked = list(np.argsort(flat)[-4:]) + list(np.random.default_rng(1).choice(flat.size, 4, replace=False))
    eps, scale = 1e-3, flat.max()
    assert scale > 0

    def score(a):
        return float(split.head(ms.Tensor(a)).asnumpy()[0, c])

    for i in picked:
        index = np.unravel_index(i, activation.shape)
        plus, minus = activation.copy(), activation.copy()
        plus[index] += eps
        minus[index] -= eps
        numeric = (score(plus) - score(minus)) / (2 * eps)
        assert abs(numeric - gradient[index]) <= 2e-3 * scale, (stage, index, numeric, gradient[index])


def test_the_clips_of_a_batch_get_their_own_gradients():
    net, clips = _tiny_net(), _clips(2, seed=5)
    split = StageSplit(net, "layer2")
    _, together, _ = stage_gradients(split, clips, 1)
    for i in range(2):
        _, alone, _ = stage_gradients(split, clips[i:i + 1], 1)
        np.testing.assert_allclose(together[i], alone[0], rtol=1e-4, atol=1e-7)


def test_every_cut_reproduces_the_network():
    net, clip = _tiny_net(), _clips()
    expected = net(ms.Tensor(clip)).asnumpy()
    for stage in STAGES:
        split = StageSplit(net, stage)
        np.testing.assert_allclose(split.head(split.features(ms.Tensor(clip))).asnumpy(), expected,
                                   rtol=1e-5, atol=1e-6, err_msg=stage)
    with pytest.raises(UserError, match="layer5 is not one of conv1, layer1"):
        StageSplit(net, "layer5")


def test_grad_cam_is_the_relu_of_the_gradient_weighted_channels():
    activation = np.zeros((1, 2, 1, 2, 2), np.float32)
    activation[0, 0] = [[[1, 2], [3, 4]]]
    activation[0, 1] = [[[4, 0], [0, 0]]]
    gradient = np.zeros_like(activation)
    gradient[0, 0], gradient[0, 1] = 0.5, -1.0  # channel weights 0.5 and -1
    np.testing.assert_allclose(grad_cam(activation, gradient)[0, 0], [[0, 1], [1.5, 2]])


@pytest.mark.parametrize("source,target", [((2, 4, 4), (4, 32, 32)), ((1, 1, 1), (4, 8, 8)), ((3, 2, 5), (7, 9, 4))])
def test_resize_is_torchs_trilinear(source, target):
    volume = np.random.default_rng(0).random((2, *source), dtype=np.float32)
    expected = torch.nn.functional.interpolate(torch.from_numpy(volume)[:, None], size=target, mode="trilinear",
                                               align_corners=False)[:, 0].numpy()
    np.testing.assert_allclose(resize_volume(volume, target), expected, rtol=1e-5, atol=1e-6)


def test_class_by_name_or_index_and_an_unknown_one_is_a_user_error():
    names = ["MoveLeft", "MoveRight", "3"]
    assert class_index("", names, 3) is None
    assert class_index("MoveRight", names, 3) == 1
    assert class_index("3", names, 3) == 2  # a name first
    assert class_index("0", names, 3) == 0 and class_index("7", None, 8) == 7
    with pytest.raises(UserError, match="--class_name=Jump is not a class of the model \\(MoveLeft, MoveRight"):
        class_index("Jump", names, 3)
    with pytest.raises(UserError, match="0 ... 7"):
        class_index("8", None, 8)


def test_clip_frames_are_the_frames_the_clip_was_made_from():
    frames = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    np.testing.assert_array_equal(clip_frames(normalize_clip(frames)), frames)
    torchvision = (0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989)  # a model's own normalisation
    np.testing.assert_array_equal(clip_frames(normalize_clip(frames, mean=torchvision[0], std=torchvision[1]),
                                              *torchvision), frames)
