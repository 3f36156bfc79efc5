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
