"""The runtime every test runs in (the CPU, through src.runtime, like the entry scripts) and the fixtures
most tests share. Registered by tests/conftest.py."""
import os
import subprocess

import pytest

os.environ.setdefault("GLOG_v", "3")  # keep MindSpore's C++ logging to errors

from src.logs import setup_console  # noqa: E402
from src.runtime import setup_context  # noqa: E402
from tests.helpers.tiny import make_tiny_dataset, tiny_run_args  # noqa: E402

setup_context("CPU", "PYNATIVE")
setup_console()  # what every entry script does: result lines on stdout, diagnostics on stderr


def pytest_sessionstart(session):
    """Under CI=true a missing, stale or refused fast-op library stops the run: its tests would skip."""
    from src.ops import ci_problem

    problem = ci_problem()
    if problem:
        pytest.exit(f"error: {problem}", returncode=1)


@pytest.fixture
def graph_mode():
    """Run one test in GRAPH_MODE, then return to PyNative."""
    import mindspore as ms

    ms.set_context(mode=ms.GRAPH_MODE)
    yield
    ms.set_context(mode=ms.PYNATIVE_MODE)


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
    jpg, annotation = make_tiny_dataset(root, videos_per_class=3, test_videos_per_class=1, frames=8, size=40)
    return {"root": root, "video_path": str(jpg), "annotation_path": str(annotation)}


@pytest.fixture
def tiny_args(tiny_dataset, tmp_path):
    """Command-line options of a tiny run on the tiny dataset, writing into tmp_path/result."""
    return tiny_run_args(tiny_dataset, tmp_path / "result")


@pytest.fixture
def mount_tmpfs(tmp_path):
    """mount(options) -> a fresh tmpfs folder; skipped where this machine does not allow mounting."""
    mounted = []

    def mount(options):
        target = tmp_path / f"mnt{len(mounted)}"
        target.mkdir()
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({res.stderr.decode().strip()})")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", str(target)], capture_output=True)
