"""Session-wide workspaces that a fast integration file and a slow e2e file share (built once per run):
exported models next to a tiny dataset, and the tiny dataset's own videos with their JSON.
Registered by tests/conftest.py."""
import io
from contextlib import redirect_stdout

import pytest


def _export(ckpt, fmt, file_name, options):
    import mindspore as ms

    import export

    assert export.main([f"--ckpt_file={ckpt}", f"--file_format={fmt}", "--device_target=CPU",
                        f"--file_name={file_name}"] + options) == 0
    ms.set_context(mode=ms.PYNATIVE_MODE)  # export.py switches to the config's GRAPH mode


@pytest.fixture(scope="session")
def onnx_workspace(tmp_path_factory):
    """Synthetic videos -> frames -> JSON, a checkpoint (conv1_t_size 3) and its ONNX export (non-default
    stem). ``args`` are eval options for them (data and model, no model file)."""
    from tests.helpers.tiny import make_tiny_checkpoint, make_tiny_dataset, tiny_options

    root = tmp_path_factory.mktemp("eval_onnx")
    jpg, ann = make_tiny_dataset(root)
    ckpt = make_tiny_checkpoint(root / "tiny.ckpt", conv1_t_size=3)
    _export(ckpt, "ONNX", root / "tiny", ["--conv1_t_size=3"] + tiny_options())
    return {"root": root, "jpg": jpg, "ann": ann, "ckpt": ckpt, "onnx": root / "tiny.onnx",
            "args": tiny_options(conv1_t_size=3) + ["--device_target=CPU", f"--video_path={jpg}",
                                                    f"--annotation_path={ann}"]}


@pytest.fixture(scope="session")
def infer310_workspace(tmp_path_factory):
    """A tiny dataset, a checkpoint (conv1_t_size 5, seed 1) and its MINDIR export, for the 310 flow."""
    from tests.helpers.tiny import make_tiny_checkpoint, make_tiny_dataset, tiny_options

    root = tmp_path_factory.mktemp("infer310")
    jpg, ann = make_tiny_dataset(root)
    ckpt = make_tiny_checkpoint(root / "tiny.ckpt", conv1_t_size=5, seed=1)
    model_args = tiny_options(conv1_t_size=5)
    _export(ckpt, "MINDIR", root / "tiny", model_args)
    data_args = model_args + ["--device_target=CPU", f"--video_path={jpg}", f"--annotation_path={ann}"]
    return {"root": root, "jpg": jpg, "ann": ann, "ckpt": ckpt, "mindir": root / "tiny.mindir",
            "model_args": model_args, "args": data_args}


@pytest.fixture(scope="session")
def infer310_eval_lines(infer310_workspace, tmp_path_factory):
    """eval.py's three result lines (clip / mean class accuracy / videos) for the 310 workspace's checkpoint:
    the contract output the 310 flow must reproduce line for line."""
    import mindspore as ms

    import eval as eval_script

    out = tmp_path_factory.mktemp("eval")
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert eval_script.main(infer310_workspace["args"] + [f"--inference_ckpt_path={infer310_workspace['ckpt']}",
                                                              f"--result_path={out}"]) == 0
    ms.set_context(mode=ms.PYNATIVE_MODE)
    return buf.getvalue().strip().splitlines()[-3:]


@pytest.fixture(scope="session")
def views_workspace(tmp_path_factory):
    """A tiny dataset of 12-frame videos, a checkpoint and its ONNX and MINDIR exports; ``args`` evaluate
    3 clips x 3 crops per video."""
    from tests.helpers.tiny import make_tiny_checkpoint, make_tiny_dataset, tiny_options

    root = tmp_path_factory.mktemp("views")
    jpg, ann = make_tiny_dataset(root, frames=12)
    ckpt = make_tiny_checkpoint(root / "m.ckpt", seed=3)
    for fmt in ("ONNX", "MINDIR"):
        _export(ckpt, fmt, root / "m", tiny_options())
    args = tiny_options() + ["--device_target=CPU", "--dataset=synthetic", f"--video_path={jpg}",
                             f"--annotation_path={ann}", "--test_clips=3", "--test_crops=3"]
    return {"root": root, "ckpt": ckpt, "args": args}


@pytest.fixture
def video_index_cache(tmp_path, monkeypatch):
    """A fresh video index cache per test, and the detected input format announced again."""
    from src.data import layout

    monkeypatch.setenv("RESNET3D_VIDEO_INDEX", str(tmp_path / "index"))
    layout._announced.clear()  # the detected input format is printed once per process


@pytest.fixture(scope="session")
def video_dataset(tiny_dataset, tmp_path_factory):
    """The tiny dataset's own .avi files and a JSON generated from them (not from the frames)."""
    from src.generate_ucf101_json import main as ucf101_json

    root = tiny_dataset["root"]
    out = tmp_path_factory.mktemp("video_json")
    assert ucf101_json(["--dir_path", str(root / "labels"), "--video_path", str(root / "videos"),
                        "--dst_dir_path", str(out), "--n_jobs", "1"]) == 0
    return {"video_path": str(root / "videos"), "annotation_path": str(out / "ucf101_01.json"),
            "frames": tiny_dataset}
