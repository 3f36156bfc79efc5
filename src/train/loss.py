"""Softmax cross-entropy with label smoothing, as the original's CrossEntropySmooth.

The true class gets 1 - s, every other class s / (C - 1) (not PyTorch's s / C convention). With mixup /
cutmix the targets arrive already smoothed and mixed (src.train.mix) and ``dense`` takes them as they are.
"""
import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops
import numpy as np


def smoothed_targets(labels, n_classes, smoothing):
    """float32 [B, n_classes]: the loss's target rows for integer ``labels``."""
    target = np.full((len(labels), n_classes), smoothing / max(n_classes - 1, 1), np.float32)
    target[np.arange(len(labels)), np.asarray(labels)] = 1.0 - smoothing
    return target


class CrossEntropySmooth(nn.Cell):
    def __init__(self, num_classes, smooth_factor=0.1, dense=False):
        super().__init__()
        self.num_classes = num_classes
        self.dense = dense
        self.on_value = ms.Tensor(1.0 - smooth_factor, ms.float32)
        self.off_value = ms.Tensor(smooth_factor / max(num_classes - 1, 1), ms.float32)
        self.ce = nn.SoftmaxCrossEntropyWithLogits(sparse=False, reduction="mean")

    def construct(self, logits, label):
        target = label if self.dense else ops.one_hot(label, self.num_classes, self.on_value, self.off_value)
        return self.ce(logits.astype(ms.float32), target)
