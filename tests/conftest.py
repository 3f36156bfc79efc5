"""Shared fixtures. Every test runs on the CPU through src.runtime, like the entry scripts."""
import os

import pytest

os.environ.setdefault("GLOG_v", "3")  # keep MindSpore's C++ logging to errors

from src.runtime import setup_context  # noqa: E402
from tests.helpers.tiny import make_dataset, tiny_args as toy_args  # noqa: E402

RUNTIME = setup_context("CPU", "PYNATIVE")


@pytest.fixture
def graph_mode():
    """Run one test in GRAPH_MODE, then return to PyNative."""
    import mindspore as ms

    ms.set_context(mode=ms.GRAPH_MODE)
    yield
    ms.set_context(mode=ms.PYNATIVE_MODE)


TINY_ARGS = ["--device_target=CPU", "--dataset=synthetic"] + toy_args(eval_batch_size=8)


@pytest.fixture(autouse=True)
def _pynative_after():
    """Entry scripts switch to the config's GRAPH mode; every test starts in PyNative."""
    yield
    import mindspore as ms

    ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A real synthetic dataset (8 classes, 3 train + 1 test videos per class, 8 frames of 40x40),
    through the real generator, frame extraction and annotation commands. Returns its paths."""
    root = tmp_path_factory.mktemp("tiny")
    jpg, annotation = make_dataset(root, videos_per_class=3, test_videos_per_class=1, frames=8, size=40)
    return {"root": root, "video_path": str(jpg), "annotation_path": str(annotation)}


@pytest.fixture
def tiny_args(tiny_dataset, tmp_path):
    """Command-line options of a tiny run on the tiny dataset, writing into tmp_path/result."""
    return TINY_ARGS + [f"--video_path={tiny_dataset['video_path']}",
                         f"--annotation_path={tiny_dataset['annotation_path']}",
                         f"--result_path={tmp_path / 'result'}"]
