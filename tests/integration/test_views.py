"""Multi-view testing (test_clips, test_crops) against a reference written here from MMAction2's definitions:
SampleFrames in test mode (clip i of N starts at int(avg * (i + 0.5)), avg = (n - T + 1) / N, 0-based;
all at 0 and loop-padded when n < T) and ThreeCrop (crops of S along the longer side of the short-side-resized
frame at offsets 0, s, 2s, s = (long - S) // 2)."""
import numpy as np
import pytest

from src.data import spatial
from src.data.presets import ClipSpec, eval_clip, eval_views, views_label
from src.data.frames import FrameFolder
from tests.helpers.media import write_frames


def reference_starts(n, T, N):
    if n < T:
        return [0] * N
    avg = (n - T + 1) / N
    return [int(avg * (i + 0.5)) for i in range(N)]


@pytest.mark.parametrize("n_frames", [3, 8, 16, 17, 40, 301])
@pytest.mark.parametrize("n_clips", [1, 3, 10])
def test_uniform_clips_start_where_mmaction2_starts_them(n_frames, n_clips):
    T = 8
    spec = ClipSpec(sample_duration=T, test_clips=n_clips)
    views = eval_views(n_frames, spec)
    assert len(views) == n_clips and all(crop == 0 for _, crop in views)
    for (numbers, _), start in zip(views, reference_starts(n_frames, T, n_clips)):
        if n_frames >= T:
            assert numbers == list(range(start + 1, start + T + 1))  # 1-based frame numbers
        else:
            assert numbers == [1 + i % n_frames for i in range(T)]  # loop-padded from the first frame


@pytest.mark.parametrize("height, width", [(240, 320), (320, 240), (112, 112), (48, 200)])
def test_three_crops_are_mmaction2s(height, width):
    S = 112
    out_w = S if width <= height else int(S * width / height)  # the short-side resize, PIL's rounding
    out_h = S if height < width else int(S * height / width)
    sx, sy = width / out_w, height / out_h  # source pixels per resized pixel, per axis
    step = (max(out_w, out_h) - S) // 2
    for index in range(3):
        left, top, w, h = spatial.three_crop_box(height, width, S, index)
        expected = (index * step, 0) if out_w > out_h else (0, index * step)
        assert (left / sx, top / sy) == pytest.approx(expected)
        assert (w / sx, h / sy) == pytest.approx((S, S))


def test_views_are_windows_times_crops_and_named():
    spec = ClipSpec(sample_duration=4, test_clips=5, test_crops=3)
    views = eval_views(20, spec)
    assert len(views) == 15 and [c for _, c in views[:3]] == [0, 1, 2]
    assert views_label(spec) == "5 clips x 3 crops"
    assert views_label(ClipSpec()) == ""
    assert views_label(ClipSpec(test_crops=3, inference_stride=16)) == "sliding windows every 16 x 3 crops"


def test_three_crops_of_a_wide_clip_are_its_left_middle_right(tmp_path):
    folder = write_frames(tmp_path / "v", 4, height=48, width=96)
    source = FrameFolder(folder, 4)
    spec = ClipSpec(sample_size=48, sample_duration=4, test_crops=3)
    clips = [eval_clip(source, [1, 2, 3, 4], spec, crop) for crop in range(3)]
    from src.data.spatial import normalize_clip

    full = np.stack(source.read([1, 2, 3, 4])[0])  # 48 x 96: no resize needed
    for crop, clip in enumerate(clips):
        expected = normalize_clip(np.ascontiguousarray(full[:, :, crop * 24:crop * 24 + 48]))
        np.testing.assert_allclose(clip, expected, atol=1e-5)


def test_the_aggregated_score_is_the_mean_softmax_over_every_view(views_workspace, tmp_path):
    """Reference: each view through the network one by one, softmax, mean (NumPy), vs predict.py's score."""
    from src.config import load_config
    from src.data.layout import open_video
    from src.inference.predictors import checkpoint_predictor
    from src.deploy.predict import predict_clips

    cfg = load_config(views_workspace["args"] + ["--eval_batch_size=4"])
    video = next((views_workspace["root"] / "jpg").glob("*/*"))
    predict = checkpoint_predictor(cfg.arch, views_workspace["ckpt"])
    spec = ClipSpec.of(cfg.data, cfg.evaluation)
    source = open_video(video)
    views = eval_views(len(source), spec)
    assert len(views) == 9
    reference = np.mean([predict(eval_clip(source, numbers, spec, crop)[None])[0] for numbers, crop in views], 0)
    scores, n_frames, n_views = predict_clips(predict, video, spec, cfg.eval_batch_size)
    assert (n_frames, n_views) == (12, 9)
    np.testing.assert_allclose(scores, reference, atol=1e-6)


def test_prediction_memory_stays_bounded_on_a_long_video(views_workspace, tmp_path):
    import tracemalloc

    from src.config import load_config
    from src.deploy.predict import predict_clips

    video = write_frames(tmp_path / "long", 400, height=40, width=40)
    cfg = load_config(views_workspace["args"] + ["--test_clips=0", "--test_crops=1", "--inference_stride=1",
                                        "--eval_batch_size=8"])
    sizes = []

    def predict(clips):
        sizes.append(len(clips))
        return np.full((len(clips), 8), 1 / 8, np.float32)

    tracemalloc.start()
    scores, _, n_views = predict_clips(predict, video, ClipSpec.of(cfg.data, cfg.evaluation), cfg.eval_batch_size)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    all_clips = n_views * 3 * 4 * 32 * 32 * 4
    print(f"{n_views} views: peak {peak / 1e6:.1f} MB (all clips at once would be {all_clips / 1e6:.1f} MB)")
    assert n_views == 398 and max(sizes) == 8  # windows at frames 1..398, the last loop-padded
    assert peak < all_clips / 2
