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
