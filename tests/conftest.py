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
