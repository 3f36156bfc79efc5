"""Whole runs from video files (input_format video): train then eval, eval_onnx.py and the 310 preprocessing
reading videos, and the demo's config training briefly from videos."""
import json

import mindspore as ms
import numpy as np
import pytest

import eval as eval_script
import eval_onnx
import export
import preprocess
import train as train_script
from src.config import REPO_ROOT, load_config
from src.data.datasets import EvalSource, load_annotation
from src.data.presets import ClipSpec
from src.deploy.infer310 import read_manifest
from tests.helpers.tiny import make_tiny_checkpoint, tiny_options, tiny_run_args

pytestmark = pytest.mark.usefixtures("video_index_cache")


@pytest.mark.slow
def test_train_then_eval_from_videos(video_dataset, tmp_path, capsys):
    args = tiny_run_args(video_dataset, tmp_path / "result")
    assert train_script.main(args + ["--n_epochs=1", "--batch_size=8", "--start_ft=conv1",
                                     "--num_workers=2", "--train_crop=random"]) == 0
    out = capsys.readouterr().out
    assert "epoch: 1 step: 3, loss is" in out
    ckpt = tmp_path / "result" / "resnet3d-synthetic-1_3.ckpt"
    assert eval_script.main(args + [f"--inference_ckpt_path={ckpt}", "--eval_subset=test"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-3].startswith("clip: ") and "top-1: " in lines[-3]
    assert lines[-1] == "videos: ground truth 8, predicted 8, missing 0; clips: 16"


@pytest.mark.slow
def test_onnx_eval_and_310_preprocessing_from_videos(video_dataset, tmp_path, capsys):
    """eval_onnx.py and preprocess.py (Ascend 310 step 1) read videos through the same eval dataset."""
    ckpt = make_tiny_checkpoint(tmp_path / "tiny.ckpt")
    assert export.main([f"--ckpt_file={ckpt}", "--file_format=ONNX", "--device_target=CPU",
                        f"--file_name={tmp_path / 'tiny'}"] + tiny_options()) == 0
    ms.set_context(mode=ms.PYNATIVE_MODE)
    args = tiny_run_args(video_dataset, tmp_path / "result", "--input_format=video")
    assert eval_script.main(args + [f"--inference_ckpt_path={ckpt}"]) == 0
    ms_lines = capsys.readouterr().out.strip().splitlines()[-3:]
    assert eval_onnx.main(args + [f"--onnx_path={tmp_path / 'tiny.onnx'}"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-3:] == ms_lines
    assert preprocess.main(args + [f"--output_path={tmp_path / 'pre'}"]) == 0
    manifest = read_manifest(tmp_path / "pre")
    cfg = load_config(args)
    source = EvalSource(load_annotation(cfg.annotation_path, cfg.video_path, "validation", "video")[0],
                        ClipSpec.of(cfg.data, cfg.evaluation))
    assert len(manifest["clips"]) == len(source) == 16
    clip = np.fromfile(tmp_path / "pre" / "data" / "clip_0000005.bin", np.float32).reshape(1, 3, 4, 32, 32)
    np.testing.assert_array_equal(clip[0], source[5][0])


@pytest.mark.slow
def test_the_demos_training_runs_briefly_from_videos(video_dataset, tmp_path, capsys):
    args = [f"--config_path={REPO_ROOT / 'demo_config.yaml'}", f"--video_path={video_dataset['video_path']}",
            f"--annotation_path={video_dataset['annotation_path']}", f"--result_path={tmp_path / 'demo'}",
            "--n_epochs=1", "--batch_size=8", "--eval_interval=1", "--input_format=video"]
    assert train_script.main(args) == 0
    out = capsys.readouterr().out
    assert "epoch: 1 step: 3, loss is" in out  # the original's step line
    assert json.loads((tmp_path / "demo" / "best_metrics.json").read_text())["epoch"] == 1
    assert (tmp_path / "demo" / "best.ckpt").is_file() and (tmp_path / "demo" / "train_synthetic.log").is_file()
