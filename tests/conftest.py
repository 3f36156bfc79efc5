"""Shared fixtures. Every test runs on the CPU through src.context, like the entry scripts."""
import os

import pytest

os.environ.setdefault("GLOG_v", "3")  # keep MindSpore's C++ logging to errors

from src.context import setup_context  # noqa: E402

RUNTIME = setup_context("CPU", "PYNATIVE")


@pytest.fixture
def graph_mode():
    """Run one test in GRAPH_MODE, then return to PyNative."""
    import mindspore as ms

    ms.set_context(mode=ms.GRAPH_MODE)
    yield
    ms.set_context(mode=ms.PYNATIVE_MODE)


TINY_MODEL = ["--device_target=CPU", "--dataset=synthetic", "--model_depth=10", "--widen_factor=0.125",
              "--n_classes=8", "--sample_size=32", "--sample_duration=4", "--inference_stride=4",
              "--num_workers=1", "--eval_batch_size=8"]


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A real synthetic dataset (8 classes, 3 train + 1 test videos per class, 8 frames of 40x40),
    through the real generator, frame extraction and annotation commands. Returns its paths."""
    from src.data import extract
    from src.data.synthetic import generate
    from src.generate_ucf101_json import main as make_json

    root = tmp_path_factory.mktemp("tiny")
    generate(root, videos_per_class=3, test_videos_per_class=1, frames=8, size=40, seed=0, n_jobs=1,
             progress=False)
    extract.extract_all(root / "videos", root / "jpg", size=0, n_jobs=1, progress=False)
    assert make_json(["--dir_path", str(root / "labels"), "--video_path", str(root / "jpg"),
                      "--dst_dir_path", str(root / "json")]) == 0
    return {"root": root, "video_path": str(root / "jpg"), "annotation_path": str(root / "json" / "ucf101_01.json")}


@pytest.fixture
def tiny_args(tiny_dataset, tmp_path):
    """Command-line options of a tiny run on the tiny dataset, writing into tmp_path/result."""
    return TINY_MODEL + [f"--video_path={tiny_dataset['video_path']}",
                         f"--annotation_path={tiny_dataset['annotation_path']}",
                         f"--result_path={tmp_path / 'result'}"]
