"""The INT8 network's trunk as one Int8Program (src/ops/int8_program.py): its stem, max-pool and residual blocks,
when every part of it runs through the oneDNN INT8 op. Otherwise (the native emulation, a unit oneDNN refuses, a
pre-activation block, a type-A shortcut) the network keeps running one op per cell.

``RESNET3D_INT8_PROGRAM=0`` keeps the op-per-unit network (for comparisons: both give the same result).
"""
import os

import mindspore as ms
import mindspore.nn as nn

from src.ops.int8_program import PROGRAM_ENV, Int8Program, pool_step, status, unit_step


class _Unsupported(Exception):
    pass


def _steps(net):
    """([step, ...], [unit cell, ...]) of ``net``'s trunk in its construct's order (Int8Block: shortcut, body,
    last unit adding the shortcut's slot); _Unsupported for a part the program cannot run."""
    from src.ops.fast_pool3d import FastMaxPool3d
    from src.ops.int8_conv3d import Int8Conv3d

    steps, cells = [], []

    def unit(cell, src, residual=-1):
        if not isinstance(cell, Int8Conv3d) or cell.fallback is not None:
            raise _Unsupported
        steps.append(unit_step(cell, src, residual))
        cells.append(cell)
        return len(steps)

    x = 0
    for cell in net.stem:
        x = unit(cell, x)
    if net.max_pool is not None:
        if not isinstance(net.max_pool, FastMaxPool3d):
            raise _Unsupported
        steps.append(pool_step(net.max_pool, x))
        x = len(steps)
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        for block in layer:
            if block.pre is not None:
                raise _Unsupported
            identity = x if block.shortcut is None else unit(block.shortcut, x)
            y = x
            for cell in block.body:
                y = unit(cell, y)
            x = unit(block.last, y, identity)
    return steps, cells


def program_wanted():
    """False when RESNET3D_INT8_PROGRAM=0 (read when a network is built) or the op is not built."""
    return os.environ.get(PROGRAM_ENV, "") != "0" and status()[0]


def program_of(net):
    """The Int8Program running ``net``'s trunk (an Int8ResNet3D whose plans are made), or None where it cannot."""
    try:
        steps, cells = _steps(net)
    except _Unsupported:
        return None
    from src.ops.int8_conv3d import DTYPES

    return Int8Program(steps, DTYPES[cells[-1].out_dtype], keep=cells)


class ProgramNetwork(nn.Cell):
    """What an Int8ResNet3D runs once its trunk is a program: the program, the mean over the positions and the
    head, as the network's construct computes them (MindSpore's work per call grows with the cells a network
    holds: 1 ms of r3d50's batch-1 call with the 53 unit cells)."""

    def __init__(self, program, fc):
        super().__init__()
        self.program, self.fc = program, fc
        self.set_train(False)

    def construct(self, x):
        return self.fc(self.program(x).astype(ms.float32).mean(axis=(1, 2, 3)))
