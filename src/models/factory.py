"""The one way to build a network: a ModelSpec (src.record: the architecture) -> the network of any family.

Above resnet3d.py, resnet2p1d.py and families.py, so that the family modules import only downwards.
"""
from dataclasses import asdict

from src.models.families import architecture_name, generate_family
from src.record import ModelSpec

__all__ = ["ModelSpec", "build_model"]


def build_model(spec, conv_impl="native"):
    """The network ``spec`` describes (any family of src.models.families), with ``native`` (exportable) or
    ``fast`` (CPU op) convolutions."""
    values = asdict(spec)
    net = generate_family(values.pop("model"), values.pop("model_depth"), conv_impl=conv_impl, **values)
    net.architecture = architecture_name(spec)  # checked against a checkpoint's record when loading
    return net
