"""Training and evaluation straight from video files (input_format video), on the tiny synthetic set: the
JSON, the samples and the errors. (Whole runs from videos are in tests/e2e/test_video_input_runs.py.)"""
import json

import numpy as np
import pytest

import train as train_script
from src.config import load_config
from src.data.datasets import EvalSource, TrainSource, load_annotation
from src.data.presets import ClipSpec
from tests.helpers.tiny import TINY_RUN_OPTIONS, tiny_run_args

pytestmark = pytest.mark.usefixtures("video_index_cache")


def test_video_json_equals_frames_json(video_dataset):
    with open(video_dataset["annotation_path"]) as f:
        from_videos = json.load(f)
    with open(video_dataset["frames"]["annotation_path"]) as f:
        from_frames = json.load(f)
    assert from_videos == from_frames


def test_samples_depend_only_on_seed_epoch_position_and_shard(video_dataset, tmp_path):
    """Sharded ranks see exactly the clips a single rank sees at the same positions, whatever order the
    videos are read in (seeking or decoding on): what distributed training and bit-exact resume need."""
    cfg = load_config(tiny_run_args(video_dataset, tmp_path / "result", "--input_format=video", "--train_crop=random",
                            "--h_flip=True"))
    entries, _ = load_annotation(cfg.annotation_path, cfg.video_path, "training", "video")
    assert entries and all(e.frame_dir.endswith(".avi") for e in entries)
    spec = ClipSpec.of(cfg.data, cfg.evaluation)
    single = TrainSource(entries, spec, cfg.seed, epoch=3)
    ranks = [TrainSource(entries, spec, cfg.seed, epoch=3, rank_id=r, rank_size=2) for r in (0, 1)]
    for index in reversed(range(len(ranks[1]))):  # backwards: every read seeks
        for rank, source in enumerate(ranks):
            position = rank + 2 * index
            if position < len(single):
                clip, label = source[index]
                expected_clip, expected_label = single[position]
                np.testing.assert_array_equal(clip, expected_clip)
                assert label == expected_label
    assert not np.array_equal(single[0][0], TrainSource(entries, spec, cfg.seed, epoch=4)[0][0])


def test_eval_windows_from_videos_match_frames_closely(video_dataset, tmp_path):
    frames_cfg = load_config(tiny_run_args(video_dataset["frames"], tmp_path / "result"))
    video_cfg = load_config(tiny_run_args(video_dataset, tmp_path / "result"))
    from_frames = EvalSource(load_annotation(frames_cfg.annotation_path, frames_cfg.video_path, "validation")[0],
                             ClipSpec.of(frames_cfg.data, frames_cfg.evaluation))
    from_videos = EvalSource(load_annotation(video_cfg.annotation_path, video_cfg.video_path, "validation")[0],
                             ClipSpec.of(video_cfg.data, video_cfg.evaluation))
    assert len(from_frames) == len(from_videos) > 0
    for i in range(len(from_videos)):
        a, b = from_frames[i], from_videos[i]
        assert a[1:] == b[1:]
        # frames were re-encoded as JPEG (quality 90) at extraction: small differences only
        assert np.abs(a[0] - b[0]).mean() < 0.1


def test_a_truncated_video_is_one_error_line(video_dataset, tmp_path, capsys):
    import shutil

    videos = tmp_path / "videos"
    shutil.copytree(video_dataset["video_path"], videos)
    for video in videos.glob("*/*.avi"):
        video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])  # the JSON still says 8 frames
    args = TINY_RUN_OPTIONS + [f"--video_path={videos}", f"--annotation_path={video_dataset['annotation_path']}",
                         f"--result_path={tmp_path / 'r'}", "--n_epochs=1", "--batch_size=24", "--num_workers=2"]
    assert train_script.main(args) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"error: video {videos}/") and "decodes only" in last and "annotation says 8" in last
