"""src/lr.py against literal lists; the label-smoothing loss against its hand formula."""
import numpy as np
import pytest

import mindspore as ms
from src.train.loss import CrossEntropySmooth
from src.train.lr import get_lr


def test_steps_mode_uses_global_step_boundaries():
    lr = get_lr(0.0, 0.0, 0.03, warmup_epochs=1, total_epochs=40, steps_per_epoch=4, lr_decay_mode="steps")
    np.testing.assert_allclose(lr[:6], [0.0, 0.0075, 0.015, 0.0225, 0.03, 0.03], rtol=1e-6)
    np.testing.assert_allclose(lr[[49, 50, 99, 100, 149, 150, 159]],
                               [0.03, 0.003, 0.003, 0.0003, 0.0003, 0.00003, 0.00003], rtol=1e-5)
    assert len(lr) == 160 and lr.dtype == np.float32


def test_steps_mode_with_epoch_milestones():
    lr = get_lr(0.0, 0.0, 1.0, 0, 6, 2, "steps", milestones=[2, 4])
    np.testing.assert_allclose(lr, [1, 1, 1, 1, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01], rtol=1e-6)


def test_poly_mode():
    lr = get_lr(0.0, 0.0, 1.0, 1, 3, 2, "poly")
    np.testing.assert_allclose(lr, [0.0, 0.5, 1.0, 0.5625, 0.25, 0.0625], rtol=1e-6)


def test_linear_mode():
    lr = get_lr(0.0, 0.2, 1.0, 1, 3, 2, "linear")
    np.testing.assert_allclose(lr, [0.0, 0.5, 1.0, 0.8, 0.6, 0.4], rtol=1e-6)


def test_cosine_mode_is_the_originals_variant():
    lr = get_lr(0.0, 0.0, 1.0, 1, 3, 2, "cosine")
    # warm-up one step ahead; then (total-i)/decay * 0.5 * (1 + cos(2*pi*0.47*i/decay)) + 1e-5
    expected = [0.5, 1.0] + [(6 - i) / 4 * 0.5 * (1 + np.cos(np.pi * 2 * 0.47 * i / 4)) + 1e-5 for i in range(2, 6)]
    np.testing.assert_allclose(lr, expected, rtol=1e-5)


def test_label_smoothing_matches_hand_formula():
    logits = np.array([[2.0, 0.5, -1.0, 0.0], [0.1, 0.2, 0.3, 0.4]], np.float32)
    labels = np.array([0, 3], np.int32)
    s, c = 0.1, 4
    target = np.full((2, c), s / (c - 1))
    target[np.arange(2), labels] = 1 - s
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -(target * log_softmax).sum(axis=1).mean()
    got = CrossEntropySmooth(c, s)(ms.Tensor(logits), ms.Tensor(labels)).asnumpy()
    assert got == pytest.approx(expected, rel=1e-5)
