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


def test_plateau_follows_pytorchs_rule_and_its_state_round_trips():
    from src.train.lr import Plateau

    plateau = Plateau(patience=2)
    losses = [1.0, 0.9, 0.95, 0.9, 0.91, 0.5, 0.6, 0.6, 0.6]
    reduced = [plateau.step(loss, step) for step, loss in enumerate(losses, 1)]
    # epochs 3, 4 and 5 do not beat 0.9: the third of them (> patience 2) lowers the rate; then 0.5 is a new best
    assert reduced == [False, False, False, False, True, False, False, False, True]
    assert plateau.reductions == [5, 9]
    again = Plateau(patience=2, state=plateau.state())
    assert (again.best, again.bad_epochs, again.reductions) == (plateau.best, plateau.bad_epochs, [5, 9])
    lr = again.apply(np.full(12, 0.1, np.float32))
    np.testing.assert_allclose(lr, [0.1] * 5 + [0.01] * 4 + [0.001] * 3, rtol=1e-6)
    assert get_lr(0, 0, 0.1, 0, 2, 3, "plateau").tolist() == pytest.approx([0.1] * 6)


def test_mixup_and_cutmix_mix_clips_and_labels_consistently():
    from src.train.mix import mix_batch

    rng = np.random.default_rng(0)
    clip = rng.standard_normal((4, 3, 2, 8, 8)).astype(np.float32)
    label = np.array([0, 1, 2, 3])
    same, target, lam = mix_batch(clip, label, 4, 0.1, 0.0, 0.0, rng)
    assert lam == 1.0 and same is clip and target[0].tolist() == pytest.approx([0.9, 0.1 / 3, 0.1 / 3, 0.1 / 3])
    mixed, target, lam = mix_batch(clip, label, 4, 0.0, 1.0, 0.0, np.random.default_rng(1))
    perm = np.random.default_rng(1)
    perm.beta(1.0, 1.0)  # the same draws, in the same order
    p = perm.permutation(4)
    np.testing.assert_allclose(mixed, lam * clip + (1 - lam) * clip[p], rtol=1e-6)
    assert target.sum(axis=1) == pytest.approx(np.ones(4))
    assert target[np.arange(4), label] == pytest.approx(np.where(p == np.arange(4), 1.0, lam))
    cut, target, lam = mix_batch(clip, label, 4, 0.0, 0.0, 1.0, np.random.default_rng(2))
    changed = (cut != clip).any(axis=(0, 1, 2))  # one box, the same on every frame and channel
    assert 0 < lam <= 1 and (changed.sum() / 64) == pytest.approx(1 - lam, abs=1e-6) or lam == 1.0
