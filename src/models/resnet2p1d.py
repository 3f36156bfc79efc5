"""R(2+1)D, structured and named like kenshohara/3D-ResNets-PyTorch's models/resnet2p1d.py (2020 release).

Every 3x3x3 convolution of the 3D ResNet becomes a spatial 1x3x3 (stride (1, s, s)) -> BN -> ReLU ->
temporal 3x1x1 (stride (s, 1, 1)) pair whose middle width keeps the parameter count of the 3-D kernel
(Tran et al. 2018); the stem is 1x7x7 then T x 1 x 1. Names follow upstream (``conv1_s``, ``bn1_t``,
``layer1.0.conv2_s``) with MindSpore's ``bn2d`` BatchNorm naming, as src.models.resnet3d.
"""
from functools import partial

import mindspore.nn as nn

from src.models.resnet3d import (ARCHITECTURES, STAGE_WIDTHS, MaxPool3dTorch, _native_conv3d,
                                 batch_norm, conv_factory, dense_head, make_stage)


def mid_planes(in_planes, planes, kernel_t=3, kernel_s=3):
    """Middle width of a (2+1)D pair: the 3-D kernel's parameter count over the pair's per-channel count."""
    return in_planes * planes * kernel_t * kernel_s * kernel_s // (in_planes * kernel_s * kernel_s + kernel_t * planes)


def conv_2p1d(conv, in_planes, planes, stride=1):
    """(spatial 1x3x3, temporal 3x1x1) convolutions replacing one 3x3x3 of stride ``stride``."""
    mid = mid_planes(in_planes, planes)
    return (conv(in_planes, mid, (1, 3, 3), (1, stride, stride), (0, 1, 1)),
            conv(mid, planes, (3, 1, 1), (stride, 1, 1), (1, 0, 0)))


class BasicBlock2p1d(nn.Cell):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, downsample=None, conv=_native_conv3d):
        super().__init__()
        self.conv1_s, self.conv1_t = conv_2p1d(conv, in_planes, planes, stride)
        self.bn1_s, self.bn1_t = batch_norm(self.conv1_s.out_channels), batch_norm(planes)
        self.conv2_s, self.conv2_t = conv_2p1d(conv, planes, planes)
        self.bn2_s, self.bn2_t = batch_norm(self.conv2_s.out_channels), batch_norm(planes)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def conv_bn_pairs(self):
        """(conv, bn) in forward order; a ReLU follows each but the last, which adds the shortcut first."""
        return [(self.conv1_s, self.bn1_s), (self.conv1_t, self.bn1_t),
                (self.conv2_s, self.bn2_s), (self.conv2_t, self.bn2_t)]

    def construct(self, x):
        out = self.relu(self.bn1_s(self.conv1_s(x)))
        out = self.relu(self.bn1_t(self.conv1_t(out)))
        out = self.relu(self.bn2_s(self.conv2_s(out)))
        out = self.bn2_t(self.conv2_t(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck2p1d(nn.Cell):
    expansion = 4

    def __init__(self, in_planes, planes, stride=1, downsample=None, conv=_native_conv3d):
        super().__init__()
        self.conv1 = conv(in_planes, planes, 1, 1, 0)
        self.bn1 = batch_norm(planes)
        self.conv2_s, self.conv2_t = conv_2p1d(conv, planes, planes, stride)
        self.bn2_s, self.bn2_t = batch_norm(self.conv2_s.out_channels), batch_norm(planes)
        self.conv3 = conv(planes, planes * self.expansion, 1, 1, 0)
        self.bn3 = batch_norm(planes * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def conv_bn_pairs(self):
        return [(self.conv1, self.bn1), (self.conv2_s, self.bn2_s), (self.conv2_t, self.bn2_t),
                (self.conv3, self.bn3)]

    def construct(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2_s(self.conv2_s(out)))
        out = self.relu(self.bn2_t(self.conv2_t(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


BLOCKS = {"basic": BasicBlock2p1d, "bottleneck": Bottleneck2p1d}


class ResNet2p1d(nn.Cell):
    # top-level modules in forward order (fine-tuning from start_ft freezes those before it)
    MODULE_ORDER = ("conv1_s", "bn1_s", "conv1_t", "bn1_t", "layer1", "layer2", "layer3", "layer4", "fc")

    def __init__(self, block, layers, block_inplanes=STAGE_WIDTHS, n_input_channels=3, conv1_t_size=7,
                 conv1_t_stride=1, no_max_pool=False, resnet_shortcut="B", widen_factor=1.0, n_classes=400,
                 conv_impl="native"):
        super().__init__()
        conv = conv_factory(conv_impl)
        widths = [int(w * widen_factor) for w in block_inplanes]
        self.in_planes = widths[0]
        self.no_max_pool = no_max_pool
        stem_mid = (n_input_channels * widths[0] * conv1_t_size * 49
                    // (n_input_channels * 49 + conv1_t_size * widths[0]))
        self.conv1_s = conv(n_input_channels, stem_mid, (1, 7, 7), (1, 2, 2), (0, 3, 3))
        self.bn1_s = batch_norm(stem_mid)
        self.conv1_t = conv(stem_mid, widths[0], (conv1_t_size, 1, 1), (conv1_t_stride, 1, 1),
                            (conv1_t_size // 2, 0, 0))
        self.bn1_t = batch_norm(widths[0])
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
        return [(self.conv1_s, self.bn1_s), (self.conv1_t, self.bn1_t)]

    def _make_layer(self, block, planes, blocks, stride=1, resnet_shortcut="B", conv=_native_conv3d):
        return make_stage(self, block, planes, blocks, stride, resnet_shortcut, conv)

    def construct(self, x):
        x = self.relu(self.bn1_s(self.conv1_s(x)))
        x = self.relu(self.bn1_t(self.conv1_t(x)))
        if not self.no_max_pool:
            x = self.maxpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = x.mean(axis=(2, 3, 4))
        return self.fc(x)


def generate_model(model_depth, **kwargs):
    """An R(2+1)D of ``model_depth`` (the 3D ResNet's depths; kwargs as ResNet2p1d)."""
    kind = "basic" if ARCHITECTURES[model_depth][0].expansion == 1 else "bottleneck"
    return ResNet2p1d(BLOCKS[kind], ARCHITECTURES[model_depth][1], **kwargs)
