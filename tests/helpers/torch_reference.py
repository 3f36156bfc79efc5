"""Our own PyTorch 3D-ResNet, written from the published structure of kenshohara/3D-ResNets-PyTorch.

Used only by tests and benchmarks as the reference the MindSpore model must reproduce. Its
state_dict keys are upstream's (conv1.weight, bn1.running_mean, layer1.0.downsample.0.weight, ...).
"""
import torch
from torch import nn

DEPTHS = {10: ("basic", (1, 1, 1, 1)), 18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)),
          50: ("bottleneck", (3, 4, 6, 3)), 101: ("bottleneck", (3, 4, 23, 3)),
          152: ("bottleneck", (3, 8, 36, 3)), 200: ("bottleneck", (3, 24, 36, 3))}


class TorchBasic(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv3d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv3d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(out + res)


class TorchBottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv3d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(out + res)


class TorchShortcutA(nn.Module):
    def __init__(self, planes, stride):
        super().__init__()
        self.planes, self.stride = planes, stride

    def forward(self, x):
        out = x[:, :, ::self.stride, ::self.stride, ::self.stride]
        pad = out.new_zeros(out.size(0), self.planes - out.size(1), *out.shape[2:])
        return torch.cat([out, pad], 1)


class TorchResNet3D(nn.Module):
    def __init__(self, depth, n_classes=400, shortcut_type="B", widen_factor=1.0, conv1_t_size=7,
                 conv1_t_stride=1, no_max_pool=False, n_input_channels=3):
        super().__init__()
        kind, layers = DEPTHS[depth]
        block = TorchBasic if kind == "basic" else TorchBottleneck
        widths = [int(w * widen_factor) for w in (64, 128, 256, 512)]
        self.in_planes = widths[0]
        self.no_max_pool = no_max_pool
        self.conv1 = nn.Conv3d(n_input_channels, widths[0], (conv1_t_size, 7, 7), (conv1_t_stride, 2, 2),
                               (conv1_t_size // 2, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(3, 2, 1)
        for i, (w, n) in enumerate(zip(widths, layers)):
            setattr(self, f"layer{i + 1}", self._make_layer(block, w, n, 1 if i == 0 else 2, shortcut_type))
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(widths[3] * block.expansion, n_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, block, planes, blocks, stride, shortcut_type):
        down = None
        if stride != 1 or self.in_planes != planes * block.expansion:
            if shortcut_type == "A":
                down = TorchShortcutA(planes * block.expansion, stride)
            else:
                down = nn.Sequential(nn.Conv3d(self.in_planes, planes * block.expansion, 1, stride, bias=False),
                                     nn.BatchNorm3d(planes * block.expansion))
        mods = [block(self.in_planes, planes, stride, down)]
        self.in_planes = planes * block.expansion
        mods += [block(self.in_planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        if not self.no_max_pool:
            x = self.maxpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def randomize(model, seed=0):
    """Every tensor (weights, BN affine and running statistics) drawn from ``seed``: reproducible tests."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif name.endswith(("running_mean", "bn1.bias", "bn2.bias", "bn3.bias")):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
            elif t.dim() == 1 and "bn" in name or name.endswith("downsample.1.weight"):
                t.copy_(torch.rand(t.shape, generator=gen) * 0.5 + 0.75)
            elif t.dim() == 5:  # conv: Kaiming-normal (fan-out), as upstream's init, but seeded
                fan_out = t.shape[0] * t[0, 0].numel()
                t.copy_(torch.randn(t.shape, generator=gen) * (2.0 / fan_out) ** 0.5)
            else:  # fc weight / bias
                t.copy_((torch.rand(t.shape, generator=gen) * 2 - 1) / t.shape[-1] ** 0.5)
    return model.eval()
