"""The graph that gets exported: the native network + softmax, with padding made explicit for ONNX.

MindSpore 2.10's ONNX exporter writes two of our layers wrongly (measured):
- nn.MaxPool3d(pad_mode="pad", padding=1) becomes ONNX MaxPool with auto_pad=SAME_UPPER, i.e. padding
  (0 before, 1 after) instead of (1, 1): same shapes, other values (the original port's quirk again).
- nn.Conv3d's 6-tuple padding (d_head, d_tail, h_top, h_bottom, w_left, w_right) is copied verbatim
  into ONNX ``pads``, which means (d_begin, h_begin, w_begin, d_end, h_end, w_end). Only uniform
  paddings survive; the stem with conv1_t_size != 7, e.g. (1,1,3,3,3,3), becomes wrong or even fails.
``explicit_padding`` rewrites those layers as an explicit Pad before a 'valid' conv / pool, sharing
the same Parameters, so every configuration the model accepts exports exactly.
"""
import mindspore.nn as nn
import mindspore.ops as ops

from src.models.resnet3d import MaxPool3dTorch


class PaddedConv3d(nn.Cell):
    """Explicit zero Pad + 'valid' Conv3D with the Parameter of an existing padded nn.Conv3d."""

    def __init__(self, conv):
        super().__init__()
        p = conv.padding
        self.weight = conv.weight
        self.has_bias = bool(conv.has_bias)
        self.bias = conv.bias if self.has_bias else None
        self.pad = ops.Pad(((0, 0), (0, 0), (p[0], p[1]), (p[2], p[3]), (p[4], p[5])))
        self.conv3d = ops.Conv3D(out_channel=conv.out_channels, kernel_size=conv.kernel_size, mode=1,
                                 pad_mode="valid", stride=conv.stride, dilation=conv.dilation,
                                 group=conv.group)
        self.bias_add = ops.BiasAdd()

    def construct(self, x):
        out = self.conv3d(self.pad(x), self.weight)
        if self.has_bias:
            out = self.bias_add(out, self.bias)
        return out


class ZeroPaddedMaxPool3d(nn.Cell):
    """max-pool 3x3x3 / 2 with one zero on every side. Equal to torch.nn.MaxPool3d(3, 2, 1) here
    because the stem pool follows a ReLU (inputs >= 0) and every window holds a real element."""

    def __init__(self):
        super().__init__()
        self.pad = ops.Pad(((0, 0), (0, 0), (1, 1), (1, 1), (1, 1)))
        self.pool = nn.MaxPool3d(kernel_size=3, stride=2, pad_mode="valid")

    def construct(self, x):
        return self.pool(self.pad(x))


def _needs_explicit_pad(cell):
    return isinstance(cell, nn.Conv3d) and cell.pad_mode == "pad" and len(set(cell.padding)) > 1


def _replace_child(parent, name, new):
    """Put ``new`` in ``parent``'s place ``name``. An nn.SequentialCell (or CellList) runs the list of cells it
    made when built, which setattr leaves as it was: it is given the cell by index, which updates that list."""
    if isinstance(parent, (nn.SequentialCell, nn.CellList)):
        parent[list(parent.name_cells()).index(name)] = new
    else:
        setattr(parent, name, new)


def explicit_padding(net):
    """Replace, in place, the layers the ONNX exporter mis-writes (see module doc), at any depth, inside
    nn.SequentialCell and nn.CellList too. Returns ``net``.

    Parameters are shared, not copied; their names are restored afterwards (re-parenting renames them).
    """
    names = {id(p): p.name for p in net.get_parameters()}
    for _, cell in list(net.cells_and_names()):
        for child_name, child in list(cell.name_cells().items()):
            if _needs_explicit_pad(child):
                _replace_child(cell, child_name, PaddedConv3d(child))
            elif isinstance(child, MaxPool3dTorch):
                _replace_child(cell, child_name, ZeroPaddedMaxPool3d())
    for p in net.get_parameters():
        p.name = names[id(p)]
    return net


class WithSoftmax(nn.Cell):
    """network + softmax over classes: the exported graph outputs probabilities, as the original."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.softmax = nn.Softmax(axis=-1)

    def construct(self, x):
        return self.softmax(self.net(x))
