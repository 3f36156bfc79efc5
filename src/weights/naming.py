"""Upstream PyTorch parameter names <-> ours, and the architecture a set of tensors describes.

The whole rename table is RENAME_RULES: one regular expression per kind of tensor. Convolutions and
fc keep their upstream names; BatchNorm tensors move under MindSpore's ``bn2d`` child.
"""
import re
from dataclasses import dataclass

from src.errors import UserError

_BN = r"(?P<bn>(?:.*\.)?bn\d|.*\.downsample\.1)"
RENAME_RULES = (
    (re.compile(r"^(?P<m>(?:.*\.)?conv\d|.*\.downsample\.0)\.weight$"), r"\g<m>.weight"),
    (re.compile(rf"^{_BN}\.weight$"), r"\g<bn>.bn2d.gamma"),
    (re.compile(rf"^{_BN}\.bias$"), r"\g<bn>.bn2d.beta"),
    (re.compile(rf"^{_BN}\.running_mean$"), r"\g<bn>.bn2d.moving_mean"),
    (re.compile(rf"^{_BN}\.running_var$"), r"\g<bn>.bn2d.moving_variance"),
    (re.compile(r"^fc\.(?P<p>weight|bias)$"), r"fc.\g<p>"),
)
DROPPED = re.compile(r"(^|\.)num_batches_tracked$")

# upstream builder table, by the block type found in the tensors: blocks per stage -> depth
_DEPTHS = {
    ("basic", (1, 1, 1, 1)): 10, ("basic", (2, 2, 2, 2)): 18, ("basic", (3, 4, 6, 3)): 34,
    ("bottleneck", (3, 4, 6, 3)): 50, ("bottleneck", (3, 4, 23, 3)): 101,
    ("bottleneck", (3, 8, 36, 3)): 152, ("bottleneck", (3, 24, 36, 3)): 200,
}


def strip_prefixes(state):
    """Drop DataParallel's ``module.`` prefixes (also repeated ones) from every key."""
    out = {}
    for key, value in state.items():
        while key.startswith("module."):
            key = key[len("module."):]
        out[key] = value
    return out


def torch_to_ms_name(name):
    """Our name for an upstream tensor name; None for tensors we drop; raises on unknown names."""
    if DROPPED.search(name):
        return None
    for pattern, repl in RENAME_RULES:
        if pattern.match(name):
            return pattern.sub(repl, name)
    raise KeyError(name)


def rename_state_dict(state):
    """Rename upstream keys to ours. Returns (renamed dict, list of unknown keys)."""
    renamed, unknown = {}, []
    for key, value in strip_prefixes(state).items():
        try:
            new = torch_to_ms_name(key)
        except KeyError:
            unknown.append(key)
            continue
        if new is not None:
            renamed[new] = value
    return renamed, unknown


@dataclass
class Architecture:
    model_depth: int
    block: str
    layers: tuple
    resnet_shortcut: str
    n_classes: int
    widen_factor: float
    conv1_t_size: int
    n_input_channels: int

    def describe(self):
        return (f"depth {self.model_depth} ({self.block}, blocks {list(self.layers)}), shortcut "
                f"{self.resnet_shortcut}, {self.n_classes} classes, widen_factor {self.widen_factor:g}, "
                f"conv1_t_size {self.conv1_t_size}, {self.n_input_channels} input channels")


def infer_architecture(shapes, model_depth=None, resnet_shortcut=None):
    """Architecture of a state dict in our naming, from its tensor names and shapes.

    ``model_depth`` / ``resnet_shortcut`` force a value where the tensors cannot decide.
    """
    if "conv1.weight" not in shapes or "fc.weight" not in shapes:
        raise UserError("the tensors are not a 3D-ResNet (no conv1.weight / fc.weight); "
                        "is this a checkpoint of kenshohara/3D-ResNets-PyTorch's resnet?")
    block = "bottleneck" if any(k.endswith(".conv3.weight") for k in shapes) else "basic"
    layers = []
    for stage in range(1, 5):
        ids = {int(m.group(1)) for k in shapes for m in [re.match(rf"layer{stage}\.(\d+)\.", k)] if m}
        layers.append(max(ids) + 1 if ids else 0)
    layers = tuple(layers)
    depth = _DEPTHS.get((block, layers))
    if model_depth is not None:
        depth = int(model_depth)
    if depth is None:
        raise UserError(f"blocks per stage {list(layers)} ({block}) match no upstream depth; "
                        f"pass --model_depth to force one")
    has_conv_shortcut = any(".downsample.0.weight" in k for k in shapes)
    shortcut = resnet_shortcut or ("B" if has_conv_shortcut else "A")
    conv1 = tuple(shapes["conv1.weight"])
    return Architecture(model_depth=depth, block=block, layers=layers, resnet_shortcut=shortcut,
                        n_classes=int(shapes["fc.weight"][0]), widen_factor=conv1[0] / 64,
                        conv1_t_size=int(conv1[2]), n_input_channels=int(conv1[1]))
