"""Our own PyTorch references of the upstream families besides the 3D ResNet (tests/torch_reference.py):
R(2+1)D (kenshohara/3D-ResNets-PyTorch models/resnet2p1d.py, 2020) and the CVPR 2018 branch's
pre-activation ResNet, Wide ResNet and ResNeXt, written from their published structure.

Used only by tests, as what the MindSpore families must reproduce. State-dict keys are upstream's
(``conv1_s.weight``, ``layer1.0.bn2_t.running_var``, ``layer2.0.downsample.0.weight``). The CVPR 2018
networks end, like upstream's, in a fixed-size AvgPool3d built for (sample_duration, sample_size).
``widen_factor`` (not upstream's for the CVPR 2018 families) scales every width to keep tests tiny.
"""
import math

import torch
from torch import nn

LAYERS = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
          152: (3, 8, 36, 3), 200: (3, 24, 36, 3)}


def bn_relu(channels):
    return nn.BatchNorm3d(channels), nn.ReLU()


def split_width(cin, cout, kt, ks):
    """Channels between the spatial and temporal halves: as many weights as the kt x ks x ks kernel."""
    return (cin * cout * kt * ks * ks) // (cin * ks * ks + kt * cout)


class Block(nn.Module):
    """A residual block whose layers are registered under upstream's names; ``steps`` is the forward plan:
    a list of (module names, ReLU after?) run in order, then the shortcut is added (and ReLU'd unless
    ``post_relu`` is False). Shortcut: None (identity), "A" (subsample + zero channels) or "B" (strided
    1x1x1 conv + BN registered as ``downsample.0/1``)."""

    def __init__(self, shortcut, cin, cout, stride, post_relu=True):
        super().__init__()
        self.shortcut, self.cout, self.stride, self.post_relu = shortcut, cout, stride, post_relu
        if shortcut == "B":
            self.downsample = nn.Sequential(nn.Conv3d(cin, cout, 1, stride, bias=False), nn.BatchNorm3d(cout))
        self.steps = []

    def add(self, name, module):
        self.add_module(name, module)

    def residual(self, x):
        if self.shortcut is None:
            return x
        if self.shortcut == "B":
            return self.downsample(x)
        sub = x[:, :, ::self.stride, ::self.stride, ::self.stride]
        zeros = sub.new_zeros(sub.shape[0], self.cout - sub.shape[1], *sub.shape[2:])
        return torch.cat([sub, zeros], dim=1)

    def forward(self, x):
        out = x
        for names, relu in self.steps:
            for name in names:
                out = getattr(self, name)(out)
            if relu:
                out = torch.relu(out)
        out = out + self.residual(x)
        return torch.relu(out) if self.post_relu else out


def conv(cin, cout, k, s=1, p=0, groups=1):
    return nn.Conv3d(cin, cout, k, s, p, bias=False, groups=groups)


def r2p1d_block(bottleneck, cin, planes, stride, shortcut):
    b = Block(shortcut, cin, planes * (4 if bottleneck else 1), stride)
    if not bottleneck:
        for i, (a, c, s) in enumerate(((cin, planes, stride), (planes, planes, 1)), start=1):
            mid = split_width(a, c, 3, 3)
            b.add(f"conv{i}_s", conv(a, mid, (1, 3, 3), (1, s, s), (0, 1, 1)))
            b.add(f"bn{i}_s", nn.BatchNorm3d(mid))
            b.add(f"conv{i}_t", conv(mid, c, (3, 1, 1), (s, 1, 1), (1, 0, 0)))
            b.add(f"bn{i}_t", nn.BatchNorm3d(c))
        b.steps = [(("conv1_s", "bn1_s"), True), (("conv1_t", "bn1_t"), True), (("conv2_s", "bn2_s"), True),
                   (("conv2_t", "bn2_t"), False)]
        return b
    mid = split_width(planes, planes, 3, 3)
    b.add("conv1", conv(cin, planes, 1))
    b.add("bn1", nn.BatchNorm3d(planes))
    b.add("conv2_s", conv(planes, mid, (1, 3, 3), (1, stride, stride), (0, 1, 1)))
    b.add("bn2_s", nn.BatchNorm3d(mid))
    b.add("conv2_t", conv(mid, planes, (3, 1, 1), (stride, 1, 1), (1, 0, 0)))
    b.add("bn2_t", nn.BatchNorm3d(planes))
    b.add("conv3", conv(planes, planes * 4, 1))
    b.add("bn3", nn.BatchNorm3d(planes * 4))
    b.steps = [(("conv1", "bn1"), True), (("conv2_s", "bn2_s"), True), (("conv2_t", "bn2_t"), True),
               (("conv3", "bn3"), False)]
    return b


def preact_block(bottleneck, cin, planes, stride, shortcut):
    b = Block(shortcut, cin, planes * (4 if bottleneck else 1), stride, post_relu=False)
    if not bottleneck:
        plan = [(cin, planes, 3, stride, 1), (planes, planes, 3, 1, 1)]
    else:
        plan = [(cin, planes, 1, 1, 0), (planes, planes, 3, stride, 1), (planes, planes * 4, 1, 1, 0)]
    for i, (a, c, k, s, p) in enumerate(plan, start=1):
        b.add(f"bn{i}", nn.BatchNorm3d(a))
        b.add(f"conv{i}", conv(a, c, k, s, p))
    # pre-activation: BN -> ReLU -> conv; expressed as steps "bn (relu)" then "conv"
    b.steps = []
    for i in range(1, len(plan) + 1):
        b.steps += [((f"bn{i}",), True), ((f"conv{i}",), False)]
    return b


def bottleneck_block(cin, mid, cout, stride, shortcut, groups=1):
    """conv1 1x1x1 -> conv2 3x3x3 (groups) -> conv3 1x1x1, each with BN; wide and ResNeXt blocks."""
    b = Block(shortcut, cin, cout, stride)
    b.add("conv1", conv(cin, mid, 1))
    b.add("bn1", nn.BatchNorm3d(mid))
    b.add("conv2", conv(mid, mid, 3, stride, 1, groups=groups))
    b.add("bn2", nn.BatchNorm3d(mid))
    b.add("conv3", conv(mid, cout, 1))
    b.add("bn3", nn.BatchNorm3d(cout))
    b.steps = [(("conv1", "bn1"), True), (("conv2", "bn2"), True), (("conv3", "bn3"), False)]
    return b


class TorchFamily(nn.Module):
    """``model`` in resnet2p1d, preresnet, wideresnet, resnext (upstream's --model names)."""

    def __init__(self, model, depth, n_classes=400, shortcut_type="B", widen_factor=1.0, conv1_t_size=7,
                 conv1_t_stride=1, no_max_pool=False, wide_resnet_k=2, cardinality=32, sample_size=None,
                 sample_duration=None):
        super().__init__()
        layers = LAYERS[depth]
        bottleneck = depth >= 50
        w = lambda c: int(c * widen_factor)  # noqa: E731
        stem = w(64)
        if model == "resnet2p1d":
            mid = split_width(3, stem, conv1_t_size, 7)
            self.conv1_s = conv(3, mid, (1, 7, 7), (1, 2, 2), (0, 3, 3))
            self.bn1_s = nn.BatchNorm3d(mid)
            self.conv1_t = conv(mid, stem, (conv1_t_size, 1, 1), (conv1_t_stride, 1, 1), (conv1_t_size // 2, 0, 0))
            self.bn1_t = nn.BatchNorm3d(stem)
            self.stem = ["conv1_s", "bn1_s", "relu", "conv1_t", "bn1_t", "relu"]
        else:
            self.conv1 = conv(3, stem, (conv1_t_size, 7, 7), (conv1_t_stride, 2, 2), (conv1_t_size // 2, 3, 3))
            self.bn1 = nn.BatchNorm3d(stem)
            self.stem = ["conv1", "bn1", "relu"]
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool3d(3, 2, 1)
        self.no_max_pool = no_max_pool
        if model == "wideresnet":
            planes_of, expansion = [w(64 * wide_resnet_k * 2 ** i) for i in range(4)], 2
        elif model == "resnext":
            planes_of, expansion = [w(128 * 2 ** i) for i in range(4)], 2
        else:
            planes_of, expansion = [w(64 * 2 ** i) for i in range(4)], 4 if bottleneck else 1
        cin = stem
        for stage, (planes, n) in enumerate(zip(planes_of, layers)):
            blocks = []
            for j in range(n):
                stride = 2 if stage > 0 and j == 0 else 1
                cout = planes * expansion
                shortcut = shortcut_type if (stride != 1 or cin != cout) else None
                if model == "resnet2p1d":
                    blocks.append(r2p1d_block(bottleneck, cin, planes, stride, shortcut))
                elif model == "preresnet":
                    blocks.append(preact_block(bottleneck, cin, planes, stride, shortcut))
                elif model == "wideresnet":
                    blocks.append(bottleneck_block(cin, planes, cout, stride, shortcut))
                else:
                    blocks.append(bottleneck_block(cin, cardinality * (planes // 32), cout, stride, shortcut,
                                                   groups=cardinality))
                cin = cout
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        if sample_size is not None:  # the CVPR 2018 networks' fixed pool
            t, s = math.ceil(sample_duration / 16), math.ceil(sample_size / 32)
            self.avgpool = nn.AvgPool3d((t, s, s), stride=1)
        else:
            self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(cin, n_classes)

    def forward(self, x):
        for name in self.stem:
            x = getattr(self, name)(x)
        if not self.no_max_pool:
            x = self.maxpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def save_upstream_way(model, path, arch):
    """As upstream's releases were saved: {'epoch', 'arch': 'resnext-101', 'state_dict', 'optimizer'}; the
    CVPR 2018 files (every family but resnet2p1d) with DataParallel's 'module.' prefixes, the 2020 ones
    (resnet2p1d-18) without."""
    state = model.state_dict()
    if not arch.startswith("resnet2p1d"):
        state = {f"module.{k}": v for k, v in state.items()}
    torch.save({"epoch": 200, "arch": arch, "state_dict": state,
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9}]}}, path)
