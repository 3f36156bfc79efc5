"""A real MINDIR from export.py: the MindSpore version it records, as src/deploy/lite.py reads it before building;
the files' mode; MindSpore Lite itself where its package is installed (it is not installable for this Python here:
PyPI serves only mindspore-lite 2.0.0, for CPython 3.7)."""
import importlib.util
import stat

import mindspore as ms
import numpy as np
import pytest

import export
from src.deploy import lite
from src.errors import UserError
from tests.helpers.tiny import make_tiny_checkpoint, tiny_options

needs_lite = pytest.mark.skipif(importlib.util.find_spec("mindspore_lite") is None,
                                reason="mindspore_lite is not installed (PyPI's only wheel, 2.0.0, is for CPython 3.7)")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("lite")
    ckpt = make_tiny_checkpoint(root / "tiny.ckpt")
    return {"ckpt": ckpt, "mindir": root / "tiny.mindir",
            "code": export.main([f"--ckpt_file={ckpt}", "--file_format=MINDIR", "--device_target=CPU",
                                 "--batch_size=1", f"--file_name={root / 'tiny'}"] + tiny_options())}


def test_the_mindir_records_the_exporting_mindspore(exported, capsys):
    assert exported["code"] == 0
    exporter, ir_version = lite.mindir_versions(exported["mindir"])
    assert exporter == ms.__version__
    assert isinstance(ir_version, int) and ir_version >= 1
    major, minor = lite.release(ms.__version__)
    lite.check_lite_release(f"{major}.{minor}.0", exported["mindir"], exporter, ir_version)
    with pytest.raises(UserError, match=f"install MindSpore Lite {major}.{minor}.x"):
        lite.check_lite_release("2.0.0", exported["mindir"], exporter, ir_version)


def test_export_says_which_lite_serves_the_model(tmp_path, capsys):
    ckpt = make_tiny_checkpoint(tmp_path / "tiny.ckpt")
    assert export.main([f"--ckpt_file={ckpt}", "--file_format=MINDIR", "--device_target=CPU",
                        f"--file_name={tmp_path / 'm'}"] + tiny_options()) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    major, minor = lite.release(ms.__version__)
    assert line.startswith(f"{tmp_path / 'm.mindir'} records MindSpore {ms.__version__} (MINDIR version ")
    assert line.endswith(f"serve it with MindSpore Lite {major}.{minor}.x, the exporting MindSpore's release")


def test_models_and_checkpoints_are_owner_read_only(exported):
    """MindSpore's savers chmod what they write to 0400, whatever the umask: the README tells how to share."""
    for path in (exported["ckpt"], exported["mindir"]):
        assert stat.S_IMODE(path.stat().st_mode) == 0o400, path


@needs_lite
def test_check_names_the_release_the_model_needs(exported, capsys):
    installed = lite.lite_version(lite.import_lite())
    code = lite.main(["--check", f"--mindir_path={exported['mindir']}"])
    captured = capsys.readouterr()
    if lite.release(installed) < lite.release(ms.__version__):
        assert code == 2 and "is older than MindSpore" in captured.err
    else:
        assert code == 0 and f"exported by MindSpore {ms.__version__}" in captured.out


@needs_lite
def test_real_lite_runs_the_model_or_says_why_not(exported):
    from src.inference.predictors import mindir_predictor

    clip = np.random.default_rng(0).standard_normal((1, 3, 4, 32, 32)).astype(np.float32)
    try:
        predict = lite.lite_predictor(str(exported["mindir"]), 0)
    except UserError as err:  # an older Lite (refused before building) or no Ascend device / toolkit here
        assert "Lite must be the exporting MindSpore's release" in str(err)
        assert ms.__version__ in str(err)
        return
    np.testing.assert_allclose(predict(clip), mindir_predictor(exported["mindir"])(clip), atol=1e-4)
