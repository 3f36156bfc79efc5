"""The one way to build a network: ModelSpec (the config's model keys) -> the network of any family.

Above resnet3d.py, resnet2p1d.py and families.py, so that the family modules import only downwards.
"""
from dataclasses import asdict, dataclass

from src.models.families import architecture_name, generate_family


@dataclass(frozen=True)
class ModelSpec:
    """Everything that defines the network's architecture (the config's model keys)."""
    model_depth: int = 50
    resnet_shortcut: str = "B"
    n_classes: int = 400
    widen_factor: float = 1.0
    conv1_t_size: int = 7
    conv1_t_stride: int = 1
    no_max_pool: bool = False
    n_input_channels: int = 3
    model: str = "resnet"
    wide_resnet_k: int = 2
    resnext_cardinality: int = 32

    @classmethod
    def from_config(cls, cfg, **overrides):
        values = {name: cfg[name] for name in cls.__dataclass_fields__}
        return cls(**{**values, **overrides})


def build_model(spec, conv_impl="native"):
    """The network ``spec`` describes (any family of src.models.families), with ``native`` (exportable) or
    ``fast`` (CPU op) convolutions."""
    values = asdict(spec)
    net = generate_family(values.pop("model"), values.pop("model_depth"), conv_impl=conv_impl, **values)
    net.architecture = architecture_name(spec)  # checked against a checkpoint's record when loading
    return net
