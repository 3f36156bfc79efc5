"""Small networks and comparisons for the op and model tests."""
import numpy as np


def relative_error(a, b):
    """Largest absolute difference relative to the largest magnitude of the reference ``b``."""
    return float(np.abs(a - b).max() / (np.abs(b).max() + 1e-30))


def seeded_resnet10(conv_impl, seed=0):
    """A ResNet-10 (widen 0.25, 5 classes) with the given convolution implementation, initialised from ``seed``."""
    import mindspore as ms

    from src.models.resnet3d import generate_model

    ms.set_seed(seed)
    return generate_model(10, widen_factor=0.25, n_classes=5, conv_impl=conv_impl)


def copy_parameters(source, target):
    """Every parameter of ``source`` into the parameter of the same name in ``target``."""
    import mindspore as ms

    values = {p.name: p.asnumpy() for p in source.get_parameters()}
    for p in target.get_parameters():
        p.set_data(ms.Tensor(values[p.name]))


def conv_fc_net(n_classes=4):
    """conv1 + fc, named like the ResNet's modules (freezing needs the names), without BatchNorm: its batch
    statistics would make a micro-batch differ from the whole batch. Clips [b, 3, T, H, W] -> logits."""
    import mindspore as ms
    import mindspore.nn as nn
    from mindspore.common.initializer import Normal

    class ConvFc(nn.Cell):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv3d(3, 4, 3, pad_mode="pad", padding=1, weight_init=Normal(0.1))
            self.fc = nn.Dense(4, n_classes, weight_init=Normal(0.1))

        def construct(self, x):
            return self.fc(ms.ops.relu(self.conv1(x)).mean(axis=(2, 3, 4)))

    return ConvFc()


def grouped_case(groups, stride, seed=6):
    """A ResNeXt-like grouped 3x3x3 convolution with ReLU (32 channels), its input and float64 reference."""
    import torch

    rng = np.random.default_rng(seed)
    w = rng.standard_normal((32, 32 // groups, 3, 3, 3)).astype(np.float32) / np.sqrt(27 * 32 / groups)
    b = rng.standard_normal(32).astype(np.float32)
    x = rng.standard_normal((2, 32, 4, 9, 9)).astype(np.float32)
    ref = torch.relu(torch.nn.functional.conv3d(torch.tensor(x, dtype=torch.float64),
                                                torch.tensor(w, dtype=torch.float64),
                                                torch.tensor(b, dtype=torch.float64), stride=stride, padding=1,
                                                groups=groups))
    return w, b, x, ref.numpy()
