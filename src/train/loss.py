"""Softmax cross-entropy with label smoothing, as the original's CrossEntropySmooth.

The true class gets 1 - s, every other class s / (C - 1) (not PyTorch's s / C convention).
"""
import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops


class CrossEntropySmooth(nn.Cell):
    def __init__(self, num_classes, smooth_factor=0.1):
        super().__init__()
        self.num_classes = num_classes
        self.on_value = ms.Tensor(1.0 - smooth_factor, ms.float32)
        self.off_value = ms.Tensor(smooth_factor / max(num_classes - 1, 1), ms.float32)
        self.ce = nn.SoftmaxCrossEntropyWithLogits(sparse=False, reduction="mean")

    def construct(self, logits, label):
        target = ops.one_hot(label, self.num_classes, self.on_value, self.off_value)
        return self.ce(logits.astype(ms.float32), target)
