"""Every 3D-ResNet family of kenshohara/3D-ResNets-PyTorch, by upstream's ``--model`` name.

- ``resnet``: the 3D ResNet (src.models.resnet3d), also the CVPR 2018 release's ``resnet-N`` files;
- ``resnet2p1d``: R(2+1)D (src.models.resnet2p1d), 2020 release;
- ``preresnet``, ``wideresnet``, ``resnext``: the CVPR 2018 release (its ``CVPR2018`` branch), blocks here;
- ``tv_r3d``, ``tv_mc3``, ``tv_r2plus1d``: torchvision's video ResNets (``torchvision.models.video``: r3d_18,
  mc3_18, r2plus1d_18), here too, named as torchvision's state dicts.

The CVPR 2018 networks end in a fixed-size AvgPool3d((ceil(T/16), ceil(S/32), ceil(S/32))), which is the
global average at the size they were built for (and fails or averages windows at others); ours average
globally at every size, so converted files give upstream's logits at their training size and still run
at any other.

``widen_factor`` scales every width (stem included) of every family; upstream has it for resnet and
resnet2p1d only (the CVPR 2018 files are widen_factor 1), our tests use it for tiny networks.
"""
import mindspore.nn as nn
import mindspore.ops as ops
from mindspore.common.initializer import Normal

from src.errors import UserError
from src.models.resnet2p1d import mid_planes
from src.models.resnet3d import (ARCHITECTURES, STAGE_WIDTHS, Bottleneck, ResNet3D, _native_conv3d, batch_norm,
                                 conv_factory)

FAMILIES = ("resnet", "resnet2p1d", "preresnet", "wideresnet", "resnext", "tv_r3d", "tv_mc3", "tv_r2plus1d")
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


# torchvision.models.video (r3d_18, mc3_18, r2plus1d_18 and VideoResNet's other block counts): the convolution
# of each stage, as torchvision's conv makers: a full 3x3x3 (Conv3DSimple), a 1x3x3 in space only
# (Conv3DNoTemporal: MC3 keeps 3-D convolutions in the stem and layer1 only) or a (2+1)D pair (Conv2Plus1D)
TORCHVISION = {"tv_r3d": ("3d",) * 4, "tv_mc3": ("3d", "2d", "2d", "2d"), "tv_r2plus1d": ("2p1d",) * 4}
TV_STEM_MID = 45  # torchvision's R(2+1)D stem: 1x7x7 to 45 channels, not the 3-D kernel's parameter count


def video_conv(kind, conv, in_planes, planes, mid, stride=1):
    """One of torchvision's conv makers: ``3d`` 3x3x3, ``2d`` 1x3x3 (stride (1, s, s)), ``2p1d`` 1x3x3 ->
    BN -> ReLU -> 3x1x1 through ``mid`` channels (a SequentialCell: names ``0``, ``1``, ``3`` as torchvision's)."""
    if kind == "3d":
        return conv(in_planes, planes, 3, stride, 1)
    if kind == "2d":
        return conv(in_planes, planes, (1, 3, 3), (1, stride, stride), (0, 1, 1))
    return nn.SequentialCell([conv(in_planes, mid, (1, 3, 3), (1, stride, stride), (0, 1, 1)), batch_norm(mid),
                              nn.ReLU(), conv(mid, planes, (3, 1, 1), (stride, 1, 1), (1, 0, 0))])


def _unit_pairs(unit):
    """(conv, bn) pairs of a torchvision ``conv -> BN [-> ReLU]`` Sequential, a (2+1)D pair's inner BN included."""
    conv, bn = unit[0], unit[1]
    if isinstance(conv, nn.SequentialCell):
        return [(conv[0], conv[1]), (conv[3], bn)]
    return [(conv, bn)]


class VideoBasicBlock(nn.Cell):
    """torchvision's BasicBlock: ``conv1`` = (conv, BN, ReLU), ``conv2`` = (conv, BN), shortcut added, ReLU.
    One middle width for both (2+1)D pairs, from the block's input and output widths (torchvision's formula;
    upstream R(2+1)D computes the second pair's from its own)."""
    expansion = 1

    def __init__(self, in_planes, planes, kind, conv, stride=1, downsample=None):
        super().__init__()
        mid = mid_planes(in_planes, planes)
        self.conv1 = nn.SequentialCell([video_conv(kind, conv, in_planes, planes, mid, stride), batch_norm(planes),
                                        nn.ReLU()])
        self.conv2 = nn.SequentialCell([video_conv(kind, conv, planes, planes, mid), batch_norm(planes)])
        self.relu = nn.ReLU()
        self.downsample = downsample

    def conv_bn_pairs(self):
        """(conv, bn) in forward order; a ReLU follows each but the last, which adds the shortcut first."""
        return _unit_pairs(self.conv1) + _unit_pairs(self.conv2)

    def construct(self, x):
        out = self.conv2(self.conv1(x))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class VideoBottleneck(nn.Cell):
    """torchvision's Bottleneck: 1x1x1 -> the stage's conv (stride here) -> 1x1x1 to 4x planes, each in a
    (conv, BN[, ReLU]) Sequential; the middle width from the block's input width and planes."""
    expansion = 4

    def __init__(self, in_planes, planes, kind, conv, stride=1, downsample=None):
        super().__init__()
        mid = mid_planes(in_planes, planes)
        self.conv1 = nn.SequentialCell([conv(in_planes, planes, 1, 1, 0), batch_norm(planes), nn.ReLU()])
        self.conv2 = nn.SequentialCell([video_conv(kind, conv, planes, planes, mid, stride), batch_norm(planes),
                                        nn.ReLU()])
        self.conv3 = nn.SequentialCell([conv(planes, planes * 4, 1, 1, 0), batch_norm(planes * 4)])
        self.relu = nn.ReLU()
        self.downsample = downsample

    def conv_bn_pairs(self):
        return _unit_pairs(self.conv1) + _unit_pairs(self.conv2) + _unit_pairs(self.conv3)

    def construct(self, x):
        out = self.conv3(self.conv2(self.conv1(x)))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def video_stem(two_plus_one, conv, n_input_channels, width, mid):
    """torchvision's stems, no max-pool: 3x7x7 stride (1, 2, 2) (BasicStem), or R(2+1)D's 1x7x7 stride (1, 2, 2)
    to ``mid`` channels -> BN -> ReLU -> 3x1x1 (R2Plus1dStem); BN and ReLU after."""
    if not two_plus_one:
        return nn.SequentialCell([conv(n_input_channels, width, (3, 7, 7), (1, 2, 2), (1, 3, 3)), batch_norm(width),
                                  nn.ReLU()])
    return nn.SequentialCell([conv(n_input_channels, mid, (1, 7, 7), (1, 2, 2), (0, 3, 3)), batch_norm(mid), nn.ReLU(),
                              conv(mid, width, (3, 1, 1), 1, (1, 0, 0)), batch_norm(width), nn.ReLU()])


class VideoResNet(nn.Cell):
    """torchvision's VideoResNet, named as its state dicts (``stem.0``, ``layer1.0.conv1.0.0``, ``fc``): a stem
    without max-pool (3x7x7, or R(2+1)D's 1x7x7 -> 3x1x1), four stages of ``kinds`` convolutions whose first
    block strides 2 from layer2 on (in space only for ``2d`` stages, also its 1x1x1 shortcut), global average,
    fc. ``widen_factor`` scales every width (torchvision has none; our tests use it for tiny networks)."""
    MODULE_ORDER = ("stem", "layer1", "layer2", "layer3", "layer4", "fc")
    no_max_pool = True

    def __init__(self, block, kinds, layers, widen_factor=1.0, n_input_channels=3, n_classes=400,
                 conv_impl="native"):
        super().__init__()
        conv = conv_factory(conv_impl)
        widths = [int(w * widen_factor) for w in STAGE_WIDTHS]
        self.stem = video_stem(kinds[0] == "2p1d", conv, n_input_channels, widths[0], int(TV_STEM_MID * widen_factor))
        self.relu = nn.ReLU()  # what follows each of stem_pairs(), for code that runs them itself
        self.in_planes = widths[0]
        stages = [self._make_layer(block, kind, width, n, 1 if i == 0 else 2, conv)
                  for i, (kind, width, n) in enumerate(zip(kinds, widths, layers))]
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        # torchvision's init of the head: normal(0, 0.01), bias 0
        self.fc = nn.Dense(widths[3] * block.expansion, n_classes, weight_init=Normal(0.01), bias_init="zeros")

    def stem_pairs(self):
        """The stem's (conv, bn) pairs in forward order, each followed by a ReLU."""
        cells = list(self.stem)
        return [(cells[i], cells[i + 1]) for i in range(0, len(cells), 3)]

    def _make_layer(self, block, kind, planes, blocks, stride, conv):
        downsample = None
        if stride != 1 or self.in_planes != planes * block.expansion:
            ds_stride = (1, stride, stride) if kind == "2d" else stride
            downsample = nn.SequentialCell([conv(self.in_planes, planes * block.expansion, 1, ds_stride, 0),
                                            batch_norm(planes * block.expansion)])
        cells = [block(self.in_planes, planes, kind, conv, stride, downsample)]
        self.in_planes = planes * block.expansion
        cells += [block(self.in_planes, planes, kind, conv) for _ in range(1, blocks)]
        return nn.SequentialCell(cells)

    def construct(self, x):
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(x.mean(axis=(2, 3, 4)))


def video_resnet(model, model_depth, resnet_shortcut="B", conv1_t_stride=1, widen_factor=1.0, n_input_channels=3,
                 n_classes=400, conv_impl="native", conv1_t_size=3, no_max_pool=True):
    """torchvision's network ``model`` (tv_r3d, tv_mc3, tv_r2plus1d) with the blocks of ``model_depth``. Its
    stem is torchvision's: temporal kernel 3, no max-pool, whatever ``conv1_t_size`` and ``no_max_pool`` say."""
    del conv1_t_size, no_max_pool  # kenshohara's stem options (ModelSpec's defaults: 7, False)
    if resnet_shortcut != "B":
        raise UserError(f"--model={model}: torchvision's video ResNets have 1x1x1 convolution shortcuts "
                        f"(resnet_shortcut B) only, not {resnet_shortcut}")
    if conv1_t_stride != 1:
        raise UserError(f"--model={model}: torchvision's stem has temporal stride 1, not conv1_t_stride "
                        f"{conv1_t_stride}")
    block, layers = ARCHITECTURES[model_depth]
    return VideoResNet(VideoBasicBlock if block.expansion == 1 else VideoBottleneck, TORCHVISION[model], layers,
                       widen_factor=widen_factor, n_input_channels=n_input_channels, n_classes=n_classes,
                       conv_impl=conv_impl)


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
    if model in TORCHVISION:
        return video_resnet(model, model_depth, **kwargs)
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
