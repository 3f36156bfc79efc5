"""Training and evaluation straight from video files (input_format video), on the tiny synthetic set."""
import json

import numpy as np
import pytest

import eval as eval_script
import train as train_script
from conftest import TINY_ARGS
from src.config import load_config
from src.data.datasets import EvalSource, TrainSource, load_annotation
from src.data.presets import ClipSpec
from src.generate_ucf101_json import main as ucf101_json


@pytest.fixture(autouse=True)
def _index_cache(tmp_path, monkeypatch):
    from src.data import video

    monkeypatch.setenv("RESNET3D_VIDEO_INDEX", str(tmp_path / "index"))
    video._announced.clear()  # the detected input format is printed once per process


@pytest.fixture(scope="module")
def video_dataset(tiny_dataset, tmp_path_factory):
    """The tiny dataset's own .avi files and a JSON generated from them (not from the frames)."""
    root = tiny_dataset["root"]
    out = tmp_path_factory.mktemp("video_json")
    assert ucf101_json(["--dir_path", str(root / "labels"), "--video_path", str(root / "videos"),
                        "--dst_dir_path", str(out), "--n_jobs", "1"]) == 0
    return {"video_path": str(root / "videos"), "annotation_path": str(out / "ucf101_01.json"),
            "frames": tiny_dataset}


def _args(data, tmp_path, *extra):
    return TINY_ARGS + [f"--video_path={data['video_path']}", f"--annotation_path={data['annotation_path']}",
                         f"--result_path={tmp_path / 'result'}"] + list(extra)


def test_video_json_equals_frames_json(video_dataset):
    with open(video_dataset["annotation_path"]) as f:
        from_videos = json.load(f)
    with open(video_dataset["frames"]["annotation_path"]) as f:
        from_frames = json.load(f)
    assert from_videos == from_frames


def test_samples_depend_only_on_seed_epoch_position_and_shard(video_dataset, tmp_path):
    """Sharded ranks see exactly the clips a single rank sees at the same positions, whatever order the
    videos are read in (seeking or decoding on): what distributed training and bit-exact resume need."""
    cfg = load_config(_args(video_dataset, tmp_path, "--input_format=video", "--train_crop=random",
                            "--h_flip=True"))
    entries, _ = load_annotation(cfg.annotation_path, cfg.video_path, "training", "video")
    assert entries and all(e.frame_dir.endswith(".avi") for e in entries)
    spec = ClipSpec.from_config(cfg)
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
    frames_cfg = load_config(_args(video_dataset["frames"], tmp_path))
    video_cfg = load_config(_args(video_dataset, tmp_path))
    from_frames = EvalSource(load_annotation(frames_cfg.annotation_path, frames_cfg.video_path, "validation")[0],
                             ClipSpec.from_config(frames_cfg))
    from_videos = EvalSource(load_annotation(video_cfg.annotation_path, video_cfg.video_path, "validation")[0],
                             ClipSpec.from_config(video_cfg))
    assert len(from_frames) == len(from_videos) > 0
    for i in range(len(from_videos)):
        a, b = from_frames[i], from_videos[i]
        assert a[1:] == b[1:]
        # frames were re-encoded as JPEG (quality 90) at extraction: small differences only
        assert np.abs(a[0] - b[0]).mean() < 0.1


@pytest.mark.slow
def test_train_then_eval_from_videos(video_dataset, tmp_path, capsys):
    args = _args(video_dataset, tmp_path)
    assert train_script.main(args + ["--n_epochs=1", "--batch_size=8", "--start_ft=conv1",
                                     "--num_workers=2", "--train_crop=random"]) == 0
    out = capsys.readouterr().out
    assert "epoch: 1 step: 3, loss is" in out
    ckpt = tmp_path / "result" / "resnet3d-synthetic-1_3.ckpt"
    assert eval_script.main(args + [f"--inference_ckpt_path={ckpt}", "--eval_subset=test"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-3].startswith("clip: ") and "top-1: " in lines[-3]
    assert lines[-1] == "videos: ground truth 8, predicted 8, missing 0; clips: 16"


def test_a_truncated_video_is_one_error_line(video_dataset, tmp_path, capsys):
    import shutil

    videos = tmp_path / "videos"
    shutil.copytree(video_dataset["video_path"], videos)
    for video in videos.glob("*/*.avi"):
        video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])  # the JSON still says 8 frames
    args = TINY_ARGS + [f"--video_path={videos}", f"--annotation_path={video_dataset['annotation_path']}",
                         f"--result_path={tmp_path / 'r'}", "--n_epochs=1", "--batch_size=24", "--num_workers=2"]
    assert train_script.main(args) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"error: video {videos}/") and "decodes only" in last and "annotation says 8" in last


@pytest.mark.slow
def test_onnx_eval_and_310_preprocessing_from_videos(video_dataset, tmp_path, capsys):
    """eval_onnx.py and preprocess.py (Ascend 310 step 1) read videos through the same eval dataset."""
    import mindspore as ms

    import eval_onnx
    import export
    import preprocess
    from src.deploy.infer310 import read_manifest
    from tests.helpers.tiny import make_checkpoint, tiny_args

    ckpt = make_checkpoint(tmp_path / "tiny.ckpt")
    assert export.main([f"--ckpt_file={ckpt}", "--file_format=ONNX", "--device_target=CPU",
                        f"--file_name={tmp_path / 'tiny'}"] + tiny_args()) == 0
    ms.set_context(mode=ms.PYNATIVE_MODE)
    args = _args(video_dataset, tmp_path, "--input_format=video")
    assert eval_script.main(args + [f"--inference_ckpt_path={ckpt}"]) == 0
    ms_lines = capsys.readouterr().out.strip().splitlines()[-3:]
    assert eval_onnx.main(args + [f"--onnx_path={tmp_path / 'tiny.onnx'}"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-3:] == ms_lines
    assert preprocess.main(args + [f"--output_path={tmp_path / 'pre'}"]) == 0
    manifest = read_manifest(tmp_path / "pre")
    cfg = load_config(args)
    source = EvalSource(load_annotation(cfg.annotation_path, cfg.video_path, "validation", "video")[0],
                        ClipSpec.from_config(cfg))
    assert len(manifest["clips"]) == len(source) == 16
    clip = np.fromfile(tmp_path / "pre" / "data" / "clip_0000005.bin", np.float32).reshape(1, 3, 4, 32, 32)
    np.testing.assert_array_equal(clip[0], source[5][0])


@pytest.mark.slow
def test_the_demos_training_runs_briefly_from_videos(video_dataset, tmp_path, capsys):
    from src.config import REPO_ROOT

    args = [f"--config_path={REPO_ROOT / 'demo_config.yaml'}", f"--video_path={video_dataset['video_path']}",
            f"--annotation_path={video_dataset['annotation_path']}", f"--result_path={tmp_path / 'demo'}",
            "--n_epochs=1", "--batch_size=8", "--eval_interval=1", "--input_format=video"]
    assert train_script.main(args) == 0
    out = capsys.readouterr().out
    assert "epoch: 1 step: 3, loss is" in out and "new best video top-1" in out
    assert (tmp_path / "demo" / "best.ckpt").is_file() and (tmp_path / "demo" / "train_synthetic.log").is_file()
