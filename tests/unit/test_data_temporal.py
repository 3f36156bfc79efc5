import numpy as np
import pytest

from src.data import temporal


def test_loop_padding_repeats_from_start():
    assert temporal.loop_pad([1, 2, 3], 8) == [1, 2, 3, 1, 2, 3, 1, 2]
    assert temporal.loop_pad([5], 3) == [5, 5, 5]
    with pytest.raises(ValueError):
        temporal.loop_pad([], 4)


def test_sliding_window_count_and_last_window_looped():
    frames = list(range(1, 41))
    windows = temporal.sliding_windows(frames, 16, 16)
    assert len(windows) == 3 and all(len(w) == 16 for w in windows)
    assert windows[2] == list(range(33, 41)) * 2
    assert len(temporal.sliding_windows(list(range(1, 17)), 16, 16)) == 1  # exact fit: one window
    assert len(temporal.sliding_windows(list(range(1, 17)), 8, 4)) == 4  # starts 0,4,8 full + 12 padded
    assert temporal.sliding_windows([1, 2, 3], 16, 16) == [[1, 2, 3] * 5 + [1]]


def test_crops_and_subsampling():
    frames = list(range(1, 11))
    assert temporal.subsample(frames, 3) == [1, 4, 7, 10]
    assert temporal.center_crop(frames, 4) == [4, 5, 6, 7]
    assert temporal.center_crop([1, 2], 4) == [1, 2, 1, 2]
    rng = np.random.default_rng(0)
    for _ in range(20):
        clip = temporal.random_crop(frames, 4, rng)
        assert len(clip) == 4 and clip == list(range(clip[0], clip[0] + 4))
    assert temporal.random_crop([1, 2, 3], 5, rng) == [1, 2, 3, 1, 2]


def test_eval_windows_use_the_stride():
    from src.data.presets import ClipSpec, eval_windows

    spec = ClipSpec(sample_t_stride=2, sample_duration=4, train_t_crop="center", inference_stride=4)
    assert eval_windows(16, spec) == [[1, 3, 5, 7], [9, 11, 13, 15]]
    with pytest.raises(ValueError, match="stride 0"):
        temporal.sliding_windows(range(1, 9), 4, 0)
