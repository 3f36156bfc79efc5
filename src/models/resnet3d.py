"""3-D ResNet, structured and named like kenshohara/3D-ResNets-PyTorch (models/resnet.py).

Parameter names follow upstream (``layer1.0.conv1.weight``, ``layer1.0.downsample.0.weight``,
``fc.weight``) with MindSpore's ``nn.BatchNorm3d`` naming for BN (``bn1.bn2d.gamma``), which is also
the original MindSpore port's naming, so its checkpoints load too.
"""
import math
from functools import partial

import mindspore.nn as nn
import mindspore.ops as ops
from mindspore.common.initializer import HeNormal, HeUniform, Uniform

from src.errors import UserError

STAGE_WIDTHS = (64, 128, 256, 512)


def _native_conv3d(in_channels, out_channels, kernel_size, stride=1, padding=0):
    """nn.Conv3d with PyTorch-style symmetric padding per dimension and upstream's init."""
    k = kernel_size if isinstance(kernel_size, tuple) else (kernel_size,) * 3
    p = padding if isinstance(padding, tuple) else (padding,) * 3
    s = stride if isinstance(stride, tuple) else (stride,) * 3
    pad6 = (p[0], p[0], p[1], p[1], p[2], p[2])
    return nn.Conv3d(in_channels, out_channels, kernel_size=k, stride=s,
                     pad_mode="pad" if any(p) else "valid", padding=pad6 if any(p) else 0,
                     has_bias=False, weight_init=HeNormal(mode="fan_out", nonlinearity="relu"))


def conv_factory(conv_impl="native"):
    """Constructor of 3-D convolutions: ``native`` (nn.Conv3d) or ``fast`` (our oneDNN op, CPU)."""
    if conv_impl == "native":
        return _native_conv3d
    if conv_impl == "fast":
        from src.ops import FastConv3d

        return FastConv3d
    raise UserError(f"conv_impl '{conv_impl}' is not one of native, fast")


def batch_norm(channels):
    # PyTorch momentum 0.1 == MindSpore momentum 0.9; upstream initialises gamma=1, beta=0
    return nn.BatchNorm3d(channels, eps=1e-5, momentum=0.9)


def dense_head(in_features, n_classes):
    bound = 1 / math.sqrt(in_features)  # torch.nn.Linear's default init
    return nn.Dense(in_features, n_classes, weight_init=HeUniform(math.sqrt(5)), bias_init=Uniform(bound))


class BasicBlock(nn.Cell):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, downsample=None, conv=_native_conv3d):
        super().__init__()
        self.conv1 = conv(in_planes, planes, 3, stride, 1)
        self.bn1 = batch_norm(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv(planes, planes, 3, 1, 1)
        self.bn2 = batch_norm(planes)
        self.downsample = downsample

    def conv_bn_pairs(self):
        """(conv, bn) in forward order; a ReLU follows each but the last, which adds the shortcut first."""
        return [(self.conv1, self.bn1), (self.conv2, self.bn2)]

    def construct(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Cell):
    expansion = 4

    def __init__(self, in_planes, planes, stride=1, downsample=None, conv=_native_conv3d):
        super().__init__()
        self.conv1 = conv(in_planes, planes, 1, 1, 0)
        self.bn1 = batch_norm(planes)
        # the stride sits on the 3x3x3 conv, as upstream
        self.conv2 = conv(planes, planes, 3, stride, 1)
        self.bn2 = batch_norm(planes)
        self.conv3 = conv(planes, planes * self.expansion, 1, 1, 0)
        self.bn3 = batch_norm(planes * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def conv_bn_pairs(self):
        return [(self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)]

    def construct(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ShortcutA(nn.Cell):
    """Type-A shortcut: spatio-temporal subsampling by stride, then zero channels appended."""

    def __init__(self, out_planes, stride):
        super().__init__()
        self.out_planes = out_planes
        self.stride = stride

    def construct(self, x):
        out = x[:, :, ::self.stride, ::self.stride, ::self.stride]
        n, c, t, h, w = out.shape
        zeros = ops.zeros((n, self.out_planes - c, t, h, w), out.dtype)
        return ops.cat((out, zeros), 1)


class MaxPool3dTorch(nn.Cell):
    """max-pool 3x3x3, stride 2, padding 1 on every side, as torch.nn.MaxPool3d(3, 2, 1).

    (The original port used pad_mode 'same', which pads 0 before and 1 after: same shapes, other
    values, so converted upstream weights did not reproduce upstream logits.)

    ``impl="fast"`` runs the fast-op library's max-pool (src/ops/fast_pool3d.py; ``training=False``
    skips the indices a backward pass needs), else MindSpore's nn.MaxPool3d.
    """

    def __init__(self, impl="native", training=True):
        super().__init__()
        if impl == "fast":
            from src.ops.fast_pool3d import FastMaxPool3d

            self.pool = FastMaxPool3d(3, 2, 1, training=training)
        else:
            self.pool = nn.MaxPool3d(kernel_size=3, stride=2, pad_mode="pad", padding=1)

    def construct(self, x):
        return self.pool(x)


def make_stage(net, block, planes, blocks, stride=1, resnet_shortcut="B", conv=_native_conv3d):
    """One stage of ``blocks`` blocks of ``net`` (a 3D ResNet or R(2+1)D: anything with ``in_planes``), the
    first with the shortcut (type A: zero-padded identity; B: 1x1x1 conv + BN) where the shape changes."""
    downsample = None
    if stride != 1 or net.in_planes != planes * block.expansion:
        if resnet_shortcut == "A":
            downsample = ShortcutA(planes * block.expansion, stride)
        else:
            downsample = nn.SequentialCell([conv(net.in_planes, planes * block.expansion, 1, stride, 0),
                                            batch_norm(planes * block.expansion)])
    cells = [block(net.in_planes, planes, stride, downsample, conv=conv)]
    net.in_planes = planes * block.expansion
    cells += [block(net.in_planes, planes, conv=conv) for _ in range(1, blocks)]
    return nn.SequentialCell(cells)


class ResNet3D(nn.Cell):
    """3D ResNet; with other blocks / widths also the CVPR 2018 families (src.models.families).

    ``stem_width`` (default: the first stage width) is 64 for the wide and ResNeXt variants.
    """
    # top-level modules in forward order (fine-tuning from start_ft freezes those before it)
    MODULE_ORDER = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc")

    def __init__(self, block, layers, block_inplanes=STAGE_WIDTHS, n_input_channels=3, conv1_t_size=7,
                 conv1_t_stride=1, no_max_pool=False, resnet_shortcut="B", widen_factor=1.0, n_classes=400,
                 conv_impl="native", stem_width=None):
        super().__init__()
        conv = conv_factory(conv_impl)
        widths = [int(w * widen_factor) for w in block_inplanes]
        self.in_planes = int(stem_width * widen_factor) if stem_width else widths[0]
        self.no_max_pool = no_max_pool
        self.conv1 = conv(n_input_channels, self.in_planes, (conv1_t_size, 7, 7),
                          (conv1_t_stride, 2, 2), (conv1_t_size // 2, 3, 3))
        self.bn1 = batch_norm(self.in_planes)
        self.relu = nn.ReLU()
        self.maxpool = MaxPool3dTorch(conv_impl)
        make = partial(self._make_layer, block, resnet_shortcut=resnet_shortcut, conv=conv)
        self.layer1 = make(widths[0], layers[0])
        self.layer2 = make(widths[1], layers[1], stride=2)
        self.layer3 = make(widths[2], layers[2], stride=2)
        self.layer4 = make(widths[3], layers[3], stride=2)
        self.fc = dense_head(widths[3] * block.expansion, n_classes)

    def stem_pairs(self):
        """The stem's (conv, bn) pairs in forward order, each followed by a ReLU."""
        return [(self.conv1, self.bn1)]

    def _make_layer(self, block, planes, blocks, stride=1, resnet_shortcut="B", conv=_native_conv3d):
        return make_stage(self, block, planes, blocks, stride, resnet_shortcut, conv)

    def construct(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        if not self.no_max_pool:
            x = self.maxpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = x.mean(axis=(2, 3, 4))
        return self.fc(x)


# depth -> (block, blocks per stage), as upstream's generate_model
ARCHITECTURES = {
    10: (BasicBlock, (1, 1, 1, 1)),
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
    200: (Bottleneck, (3, 24, 36, 3)),
}


def generate_model(model_depth, **kwargs):
    """Build a ResNet3D of ``model_depth`` (10, 18, 34, 50, 101, 152, 200); kwargs as ResNet3D."""
    if model_depth not in ARCHITECTURES:
        raise UserError(f"model_depth {model_depth} is not supported; choose one of "
                        f"{', '.join(str(d) for d in ARCHITECTURES)}")
    block, layers = ARCHITECTURES[model_depth]
    if kwargs.get("resnet_shortcut", "B") not in ("A", "B"):
        raise UserError(f"resnet_shortcut '{kwargs['resnet_shortcut']}' is not one of A, B")
    return ResNet3D(block, layers, **kwargs)
