"""Clip-level mixup and cutmix (as MMAction2 / mindcv apply them to videos): whole clips of a batch are
mixed with a permutation of the batch, the same way on every frame, and so are their smoothed labels.

The draws come from default_rng([seed, epoch, global step, micro-batch]): a resumed run mixes exactly as
the uninterrupted one.
"""
import numpy as np

from src.train.loss import smoothed_targets


def mix_batch(clip, label, n_classes, smoothing, mixup_alpha, cutmix_alpha, rng):
    """(mixed clip float32 [B,C,T,H,W], target float32 [B, n_classes], lam)."""
    target = smoothed_targets(label, n_classes, smoothing)
    modes = [m for m, alpha in (("mixup", mixup_alpha), ("cutmix", cutmix_alpha)) if alpha > 0]
    if not modes:
        return clip, target, 1.0
    mode = modes[int(rng.integers(len(modes)))]
    alpha = mixup_alpha if mode == "mixup" else cutmix_alpha
    lam = float(rng.beta(alpha, alpha))
    perm = rng.permutation(len(clip))
    if mode == "mixup":
        clip = lam * clip + (1.0 - lam) * clip[perm]
    else:
        height, width = clip.shape[-2:]
        ratio = np.sqrt(1.0 - lam)
        cut_h, cut_w = int(height * ratio), int(width * ratio)
        cy, cx = int(rng.integers(height)), int(rng.integers(width))
        y1, y2 = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
        x1, x2 = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
        clip = clip.copy()
        clip[..., y1:y2, x1:x2] = clip[perm][..., y1:y2, x1:x2]
        lam = 1.0 - (y2 - y1) * (x2 - x1) / (height * width)  # the share of pixels each label owns
    return clip.astype(np.float32), (lam * target + (1.0 - lam) * target[perm]).astype(np.float32), lam
