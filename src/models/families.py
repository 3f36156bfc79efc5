"""Every 3D-ResNet family of kenshohara/3D-ResNets-PyTorch, by upstream's ``--model`` name.

- ``resnet``: the 3D ResNet (src.models.resnet3d), also the CVPR 2018 release's ``resnet-N`` files;
- ``resnet2p1d``: R(2+1)D (src.models.resnet2p1d), 2020 release;
- ``preresnet``, ``wideresnet``, ``resnext``: the CVPR 2018 release (its ``CVPR2018`` branch), blocks here.

The CVPR 2018 networks end in a fixed-size AvgPool3d((ceil(T/16), ceil(S/32), ceil(S/32))), which is the
global average at the size they were built for (and fails or averages windows at others); ours average
globally at every size, so converted files give upstream's logits at their training size and still run
at any other.

``widen_factor`` scales every width (stem included) of every family; upstream has it for resnet and
resnet2p1d only (the CVPR 2018 files are widen_factor 1), our tests use it for tiny networks.
"""
import mindspore.nn as nn
import mindspore.ops as ops

from src.errors import UserError
from src.models.resnet3d import ARCHITECTURES, STAGE_WIDTHS, Bottleneck, ResNet3D, _native_conv3d, batch_norm

FAMILIES = ("resnet", "resnet2p1d", "preresnet", "wideresnet", "resnext")
RESNEXT_WIDTHS = (128, 256, 512, 1024)


class PreActBasicBlock(nn.Cell):
    """Pre-activation: BN -> ReLU -> conv, twice; the shortcut is added with no ReLU after it."""
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, downsample=None, conv=_native_conv3d):
        super().__init__()
        self.bn1 = batch_norm(in_planes)
        self.conv1 = conv(in_planes, planes, 3, stride, 1)
        self.bn2 = batch_norm(planes)
        self.conv2 = conv(planes, planes, 3, 1, 1)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def bn_conv_pairs(self):
        """(bn, conv) in forward order: each conv reads ReLU(bn(previous output))."""
        return [(self.bn1, self.conv1), (self.bn2, self.conv2)]

    def construct(self, x):
        out = self.conv1(self.relu(self.bn1(x)))
        out = self.conv2(self.relu(self.bn2(out)))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


class PreActBottleneck(nn.Cell):
    expansion = 4

    def __init__(self, in_planes, planes, stride=1, downsample=None, conv=_native_conv3d):
        super().__init__()
        self.bn1 = batch_norm(in_planes)
        self.conv1 = conv(in_planes, planes, 1, 1, 0)
        self.bn2 = batch_norm(planes)
        self.conv2 = conv(planes, planes, 3, stride, 1)
        self.bn3 = batch_norm(planes)
        self.conv3 = conv(planes, planes * self.expansion, 1, 1, 0)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def bn_conv_pairs(self):
        return [(self.bn1, self.conv1), (self.bn2, self.conv2), (self.bn3, self.conv3)]

    def construct(self, x):
        out = self.conv1(self.relu(self.bn1(x)))
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


class WideBottleneck(Bottleneck):
    """The 3D ResNet's bottleneck with expansion 2 (stage widths are k times wider)."""
    expansion = 2


def split_groups():
    """Whether grouped convolutions must run as one convolution per group: MindSpore's Conv3D takes
    ``group > 1`` on Ascend only when depthwise (CPU and GPU take any group)."""
    import mindspore as ms

    return ms.get_context("device_target") == "Ascend"


class SplitGroupConv3d(nn.Cell):
    """A grouped 3x3x3 convolution (symmetric padding 1) as ``groups`` ordinary ones over channel slices,
    with one ``weight`` Parameter of the grouped shape (out, in / groups, 3, 3, 3): the same checkpoint
    names and values as nn.Conv3d(group=groups), for devices whose Conv3D refuses groups."""

    def __init__(self, in_channels, out_channels, groups, stride, weight_init):
        super().__init__()
        from mindspore import Parameter
        from mindspore.common.initializer import initializer

        self.in_channels, self.out_channels, self.group = in_channels, out_channels, groups
        self.stride, self.padding, self.dilation = (stride,) * 3, (1, 1, 1), (1, 1, 1)
        shape = (out_channels, in_channels // groups, 3, 3, 3)
        self.weight = Parameter(initializer(weight_init, shape), name="weight")
        self.conv = ops.Conv3D(out_channel=out_channels // groups, kernel_size=3, pad_mode="pad", pad=1,
                               stride=stride)
        self.split_x = ops.Split(axis=1, output_num=groups)
        self.split_w = ops.Split(axis=0, output_num=groups)

    def set_precision(self, precision):
        from src.ops.fast_conv3d import conv_params

        self.precision = precision
        self.conv_params = conv_params(self.stride, self.padding, self.dilation, precision)

    def construct(self, x):
        xs, ws = self.split_x(x), self.split_w(self.weight)
        return ops.cat([self.conv(xs[i], ws[i]) for i in range(self.group)], 1)


def FastGroupConv3d(in_channels, out_channels, groups, stride, weight_init):  # noqa: N802 - a Cell's constructor
    """A grouped 3x3x3 convolution through the fast op: one oneDNN grouped primitive per pass, forward and
    backward; one ``weight`` Parameter of the grouped shape, as nn.Conv3d(group=groups), so checkpoints move
    freely between fast and native networks."""
    from src.ops.fast_conv3d import FastConv3d

    return FastConv3d(in_channels, out_channels, 3, stride, 1, groups=groups, weight_init=weight_init)


def grouped_conv3d(in_channels, out_channels, groups, stride, weight_init=None, fast=False):
    """3x3x3 grouped convolution with upstream's init: ``fast`` through the fast op (grouped primitives); natively
    nn.Conv3d(group=...), split per group where the device's Conv3D refuses groups (:func:`split_groups`)."""
    from mindspore.common.initializer import HeNormal

    weight_init = HeNormal(mode="fan_out", nonlinearity="relu") if weight_init is None else weight_init
    if groups > 1 and fast:
        return FastGroupConv3d(in_channels, out_channels, groups, stride, weight_init)
    if groups > 1 and split_groups():
        return SplitGroupConv3d(in_channels, out_channels, groups, stride, weight_init)
    return nn.Conv3d(in_channels, out_channels, kernel_size=3, stride=stride, pad_mode="pad", padding=(1,) * 6,
                     group=groups, has_bias=False, weight_init=weight_init)


class ResNeXtBottleneck(Bottleneck):
    """1x1x1 -> grouped 3x3x3 (``cardinality`` groups) -> 1x1x1 to 2x planes; middle width
    cardinality * (planes // 32), as upstream. The 3D ResNet bottleneck's forward, other widths."""
    expansion = 2
    cardinality = 32

    def __init__(self, in_planes, planes, stride=1, downsample=None, conv=_native_conv3d):
        nn.Cell.__init__(self)  # Bottleneck's own layers are not built: these replace them
        mid = self.cardinality * (planes // 32)
        if mid == 0:
            raise UserError(f"resnext: planes {planes} // 32 is 0: use a larger widen_factor")
        self.conv1 = conv(in_planes, mid, 1, 1, 0)
        self.bn1 = batch_norm(mid)
        self.conv2 = grouped_conv3d(mid, mid, self.cardinality, stride, fast=conv is not _native_conv3d)
        self.bn2 = batch_norm(mid)
        self.conv3 = conv(mid, planes * self.expansion, 1, 1, 0)
        self.bn3 = batch_norm(planes * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample


def resnext_block(cardinality):
    return type(f"ResNeXtBottleneck{cardinality}", (ResNeXtBottleneck,), {"cardinality": int(cardinality)})


def _bottleneck_only(model, model_depth):
    if ARCHITECTURES[model_depth][0].expansion == 1:
        deep = ", ".join(str(d) for d, (b, _) in ARCHITECTURES.items() if b.expansion > 1)
        raise UserError(f"--model={model} has bottleneck blocks only: --model_depth must be one of {deep}, "
                        f"not {model_depth}")


def generate_family(model, model_depth, wide_resnet_k=2, resnext_cardinality=32, **kwargs):
    """The network of upstream's ``--model`` ``model`` at ``model_depth``; kwargs as ResNet3D."""
    if model not in FAMILIES:
        raise UserError(f"--model={model} is not one of {', '.join(FAMILIES)}")
    if model_depth not in ARCHITECTURES:
        raise UserError(f"model_depth {model_depth} is not supported; choose one of "
                        f"{', '.join(str(d) for d in ARCHITECTURES)}")
    if kwargs.get("resnet_shortcut", "B") not in ("A", "B"):
        raise UserError(f"resnet_shortcut '{kwargs['resnet_shortcut']}' is not one of A, B")
    block, layers = ARCHITECTURES[model_depth]
    if model == "resnet":
        return ResNet3D(block, layers, **kwargs)
    if model == "resnet2p1d":
        from src.models.resnet2p1d import generate_model

        return generate_model(model_depth, **kwargs)
    if model == "preresnet":
        return ResNet3D(PreActBasicBlock if block.expansion == 1 else PreActBottleneck, layers, **kwargs)
    _bottleneck_only(model, model_depth)
    if model == "wideresnet":
        if wide_resnet_k < 1:
            raise UserError(f"--wide_resnet_k must be at least 1, not {wide_resnet_k}")
        widths = tuple(w * wide_resnet_k for w in STAGE_WIDTHS)
        return ResNet3D(WideBottleneck, layers, block_inplanes=widths, stem_width=64, **kwargs)
    if resnext_cardinality < 1:
        raise UserError(f"--resnext_cardinality must be at least 1, not {resnext_cardinality}")
    return ResNet3D(resnext_block(resnext_cardinality), layers, block_inplanes=RESNEXT_WIDTHS, stem_width=64,
                    **kwargs)


def architecture_name(spec):
    """A checkpoint's record of the family and its options, e.g. ``resnext (cardinality 32)``."""
    if spec.model == "wideresnet":
        return f"wideresnet (k {spec.wide_resnet_k})"
    if spec.model == "resnext":
        return f"resnext (cardinality {spec.resnext_cardinality})"
    return spec.model
