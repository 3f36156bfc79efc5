from functools import partial

import numpy as np
from PIL import Image

from src.data import spatial
from src.data.frames import FrameFolder
from tests.helpers.media import write_frames


def _random_clip(source, rng, size=32):
    box = partial(spatial.random_resized_box, scale=(0.25, 1.0), ratio=(0.75, 1 / 0.75), rng=rng)
    clip = spatial.load_clip(source, [1, 2, 3, 4], box, size)
    return spatial.normalize_clip(clip, flip=bool(rng.random() < 0.5), jitter=spatial.draw_jitter(rng))


def test_random_parameters_are_drawn_once_per_clip(tmp_path):
    # every frame shows the same picture: per-clip crop/flip/jitter must keep all frames equal
    source = FrameFolder(write_frames(tmp_path / "v", 4, 96, 128, same=True))
    for seed in range(5):
        out = _random_clip(source, np.random.default_rng(seed))
        assert out.shape == (3, 4, 32, 32) and out.dtype == np.float32
        for t in range(1, 4):
            np.testing.assert_array_equal(out[:, t], out[:, 0])


def test_same_seed_same_clip_different_seed_different(tmp_path):
    source = FrameFolder(write_frames(tmp_path / "v", 4, 96, 128))
    a = _random_clip(source, np.random.default_rng(3))
    b = _random_clip(source, np.random.default_rng(3))
    c = _random_clip(source, np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 1e-3


def test_center_crop_matches_pil_resize_then_crop(tmp_path):
    folder = write_frames(tmp_path / "v", 2, 240, 320)
    ours = spatial.load_clip(FrameFolder(folder), [1, 2], partial(spatial.center_box, size=112), 112)
    for t in (1, 2):
        image = Image.open(folder / f"image_{t:05d}.jpg").convert("RGB").resize((149, 112), Image.BILINEAR)
        ref = np.asarray(image.crop((18, 0, 130, 112))).astype(np.int16)
        diff = np.abs(ours[t - 1, :, :, ::-1].astype(np.int16) - ref)
        assert diff.mean() <= 1.0 and np.percentile(diff, 99) <= 8


def test_normalisation_contract():
    clip = np.zeros((2, 4, 4, 3), np.uint8)
    clip[..., 0] = 255  # blue in BGR
    out = spatial.normalize_clip(clip)
    assert out.shape == (3, 2, 4, 4) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(out[0], -spatial.MEAN[0] / spatial.STD[0], rtol=1e-5)  # R = 0
    np.testing.assert_allclose(out[2], (1 - spatial.MEAN[2]) / spatial.STD[2], rtol=1e-5)  # B = 1
    flipped = spatial.normalize_clip(np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3), flip=True)
    plain = spatial.normalize_clip(np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3))
    np.testing.assert_array_equal(flipped, plain[..., ::-1])


def test_boxes_stay_inside_and_reduce_choice():
    rng = np.random.default_rng(0)
    for _ in range(50):
        left, top, w, h = spatial.random_resized_box(240, 320, (0.25, 1.0), (0.75, 4 / 3), rng)
        assert left >= 0 and left + w <= 320 and top >= 0 and top + h <= 240
    assert spatial.choose_reduce(spatial.center_box(240, 320, 112), 112) == 2
    assert spatial.choose_reduce(spatial.center_box(240, 320, 56), 56) == 4
    assert spatial.choose_reduce((0, 0, 100, 100), 112) == 1
