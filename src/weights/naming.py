"""Upstream PyTorch parameter names <-> ours, and the architecture a set of tensors describes.

The whole rename table is RENAME_RULES: one regular expression per kind of tensor. Convolutions and
fc keep their upstream names (R(2+1)D's ``conv1_s`` / ``conv1_t`` included, and torchvision's ``stem.0`` /
``layer1.0.conv1.0.0``); BatchNorm tensors move under MindSpore's ``bn2d`` child. ``infer_architecture``
reads the family (src.models.families) and its options from the tensors alone.
"""
import re
from dataclasses import dataclass

from src.record import ModelSpec

from src.errors import UserError

# torchvision's video ResNets name modules by their place in Sequentials: stem (conv, BN, ReLU[, conv, BN, ReLU]),
# a block's ``convN`` (conv, BN[, ReLU]) whose conv may be a (2+1)D Sequential (conv, BN, ReLU, conv)
_TV_CONV = r"stem\.[03]|.*\.conv\d\.0(?:\.[03])?"
_TV_BN = r"stem\.[14]|.*\.conv\d\.(?:0\.)?1"
_BN = rf"(?P<bn>(?:.*\.)?bn\d(?:_[st])?|.*\.downsample\.1|{_TV_BN})"
RENAME_RULES = (
    (re.compile(rf"^(?P<m>(?:.*\.)?conv\d(?:_[st])?|.*\.downsample\.0|{_TV_CONV})\.weight$"), r"\g<m>.weight"),
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


@dataclass(frozen=True)
class Architecture(ModelSpec):
    """The ModelSpec a state dict's tensors describe, with what was read to find it: the block kind, the blocks
    per stage, and the depth those form (None when they form no upstream depth and one was forced)."""
    block: str = "basic"
    layers: tuple = ()
    tensor_depth: int | None = None

    def options(self):
        """The family's own option, as a command-line flag ('' for families without one)."""
        if self.model == "wideresnet":
            return f"--wide_resnet_k={self.wide_resnet_k}"
        if self.model == "resnext":
            return f"--resnext_cardinality={self.resnext_cardinality}"
        return ""

    def describe(self):
        option = f" ({self.options().lstrip('-').replace('=', ' ')})" if self.options() else ""
        forced = ""
        if self.tensor_depth != self.model_depth:
            formed = f"depth {self.tensor_depth}" if self.tensor_depth else "no upstream depth"
            forced = f" (forced by --model_depth; the tensors form {formed})"
        return (f"{self.model}{option} depth {self.model_depth}{forced} ({self.block}, blocks {list(self.layers)}), "
                f"shortcut {self.resnet_shortcut}, {self.n_classes} classes, widen_factor {self.widen_factor:g}, "
                f"conv1_t_size {self.conv1_t_size}, {self.n_input_channels} input channels")


def is_densenet(keys):
    """DenseNet state dicts (CVPR 2018 release) hold ``features.*`` and ``classifier.*``, no ``fc``."""
    return any(k.startswith(("features.", "classifier.")) for k in keys)


def _torchvision_family(shapes, block):
    """tv_r2plus1d (a (2+1)D stem), tv_r3d (3x3x3 in every stage) or tv_mc3 (3x3x3 in layer1, 1x3x3 after)."""
    if "stem.3.weight" in shapes:
        return "tv_r2plus1d"
    conv = "conv1" if block == "basic" else "conv2"
    temporal = []
    for stage in range(1, 5):
        kernel = shapes.get(f"layer{stage}.0.{conv}.0.weight")
        if kernel is None or len(kernel) != 5:
            raise UserError(f"the tensors look like torchvision's video ResNet (stem.0.weight) but have no "
                            f"layer{stage}.0.{conv}.0.weight convolution: is the file complete?")
        temporal.append(kernel[2] > 1)
    if all(temporal):
        return "tv_r3d"
    if temporal == [True, False, False, False]:
        return "tv_mc3"
    listed = ", ".join(f"layer{i + 1} {'3x3x3' if t else '1x3x3'}" for i, t in enumerate(temporal))
    raise UserError(f"a torchvision VideoResNet with {listed} convolutions is none of r3d (3x3x3 everywhere), mc3 "
                    f"(3x3x3 in layer1 only) or r2plus1d: it cannot be converted")


def _family(shapes, block):
    """(model, wide_resnet_k, resnext_cardinality) from a state dict in our naming."""
    if "stem.0.weight" in shapes:
        return _torchvision_family(shapes, block), 2, 32
    if "conv1_s.weight" in shapes:
        return "resnet2p1d", 2, 32
    bn1, conv1 = shapes.get("layer2.0.bn1.bn2d.gamma"), shapes.get("layer2.0.conv1.weight")
    if bn1 is not None and conv1 is not None and bn1[0] != conv1[0]:
        return "preresnet", 2, 32  # its blocks normalise their input: bn1 has the input's width
    if block != "bottleneck" or "layer1.0.conv2.weight" not in shapes:
        return "resnet", 2, 32
    conv2 = shapes["layer1.0.conv2.weight"]
    if conv2[0] != conv2[1]:
        return "resnext", 2, int(conv2[0] // conv2[1])  # grouped: in-channels per group = width / groups
    stem = shapes["conv1.weight"][0]
    planes, out = shapes["layer1.0.conv1.weight"][0], shapes["layer1.0.conv3.weight"][0]
    if out == 2 * planes:
        return "wideresnet", int(round(planes / stem)), 32
    return "resnet", 2, 32


def infer_architecture(shapes, model_depth=None, resnet_shortcut=None):
    """Architecture of a state dict in our naming, from its tensor names and shapes.

    ``model_depth`` / ``resnet_shortcut`` force a value where the tensors cannot decide.
    """
    if is_densenet(shapes):
        raise UserError("this is a DenseNet (CVPR 2018 release), which is not a 3D ResNet: it cannot be converted")
    # the stem's last convolution: its width is 64 x widen_factor, its temporal kernel conv1_t_size
    stem_key = next((k for k in ("conv1_t.weight", "stem.3.weight", "stem.0.weight") if k in shapes), "conv1.weight")
    if stem_key not in shapes or "fc.weight" not in shapes:
        raise UserError("the tensors are not a 3D-ResNet (no conv1.weight / fc.weight); "
                        "is this a checkpoint of kenshohara/3D-ResNets-PyTorch's resnet?")
    block = "bottleneck" if any(re.search(r"\.conv3\.(?:0\.)?weight$", k) for k in shapes) else "basic"
    layers = []
    for stage in range(1, 5):
        ids = {int(m.group(1)) for k in shapes for m in [re.match(rf"layer{stage}\.(\d+)\.", k)] if m}
        layers.append(max(ids) + 1 if ids else 0)
    layers = tuple(layers)
    depth = tensor_depth = _DEPTHS.get((block, layers))
    if model_depth is not None:
        depth = int(model_depth)
    if depth is None:
        raise UserError(f"blocks per stage {list(layers)} ({block}) match no upstream depth; "
                        f"pass --model_depth to force one")
    has_conv_shortcut = any(".downsample.0.weight" in k for k in shapes)
    shortcut = resnet_shortcut or ("B" if has_conv_shortcut else "A")
    model, k, cardinality = _family(shapes, block)
    stem = tuple(shapes[stem_key])
    first = {"resnet2p1d": "conv1_s.weight", "tv_r2plus1d": "stem.0.weight"}.get(model, stem_key)
    n_input = shapes[first][1]
    return Architecture(model_depth=depth, block=block, layers=layers, tensor_depth=tensor_depth,
                        resnet_shortcut=shortcut,
                        n_classes=int(shapes["fc.weight"][0]), widen_factor=stem[0] / 64,
                        conv1_t_size=int(stem[2]), n_input_channels=int(n_input), model=model,
                        wide_resnet_k=k, resnext_cardinality=cardinality)
