"""A plain folder of <class>/<video file> trains with no split files: a stratified split made once into the run
folder, recorded in the model, and made again (and checked) by eval.py given the same folder and the model."""
import json
import shutil

import pytest

import eval as eval_script
import train as train_script
from src.data.folder_split import list_folder, split_entry, stratified_split
from src.data.synthetic import generate
from src.weights.model_file import open_model
from tests.helpers.tiny import TINY_RUN_OPTIONS


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """8 classes x 5 real .avi videos of the demo's generator, plus a file that is not a video."""
    root = tmp_path_factory.mktemp("plain")
    generate(root, videos_per_class=4, test_videos_per_class=1, frames=8, size=40, seed=0, n_jobs=1, progress=False)
    videos = root / "videos"
    (videos / sorted(p.name for p in videos.iterdir())[0] / "notes.txt").write_text("not a video")
    return videos


def test_the_split_is_stratified_and_fixed():
    items = [(f"{c}_{i}", c, None) for c in ("a", "b", "c") for i in range(10)] + [("d_0", "d", None)]
    subsets = stratified_split(items, 0.2)
    for c in ("a", "b", "c"):
        assert sum(subsets[f"{c}_{i}"] == "validation" for i in range(10)) == 2
    assert subsets["d_0"] == "training", "a class with one video keeps it for training"
    assert subsets == stratified_split(list(reversed(items)), 0.2), "the listing order does not matter"
    assert split_entry(items, subsets, 0.2) != split_entry(items[:-1], subsets, 0.2)


def test_a_plain_folder_trains_and_evaluates_on_the_same_split(folder, tmp_path, caplog, capsys):
    result = tmp_path / "run"
    args = list(TINY_RUN_OPTIONS) + [f"--video_path={folder}", f"--result_path={result}", "--n_epochs=1",
                                          "--batch_size=8", "--eval_in_training=True"]
    with caplog.at_level("INFO", logger="resnet3d"):
        assert train_script.main(args) == 0
    said = [r.getMessage() for r in caplog.records]
    assert any(m.startswith(f"split {folder}: 8 classes, 32 training / 8 validation videos (val_fraction 0.2, "
                            f"seed 0) -> {result / 'synthetic_split.json'}") for m in said), said
    assert any(m.startswith("not a video or a frame folder, skipped: ") and m.endswith("notes.txt") for m in said)
    split = json.loads((result / "synthetic_split.json").read_text())["split"]
    assert dict(open_model(result / "best.ckpt").record.split) == split
    capsys.readouterr()
    eval_args = list(TINY_RUN_OPTIONS) + [f"--video_path={folder}", f"--inference_ckpt_path={result}",
                                               f"--result_path={tmp_path / 'eval'}"]
    assert eval_script.main(eval_args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("clip: ") for line in lines) and "ground truth 8," in lines[-1]
    assert not (tmp_path / "eval" / "synthetic_split.json").exists(), "the run folder's split is used as it is"


def test_a_folder_that_changed_since_training_is_one_error(folder, tmp_path, capsys):
    """The model alone (its run folder's split file not beside it): the split is made again and must match."""
    changed = tmp_path / "videos"
    shutil.copytree(folder, changed)
    classes, items, _ = list_folder(changed)
    result = tmp_path / "run"
    args = list(TINY_RUN_OPTIONS) + [f"--video_path={changed}", f"--result_path={result}", "--n_epochs=1",
                                          "--batch_size=8"]
    assert train_script.main(args) == 0
    model = tmp_path / "shared" / "model.ckpt"
    model.parent.mkdir()
    shutil.copy(next(result.glob("resnet3d-synthetic-*.ckpt")), model)
    common = list(TINY_RUN_OPTIONS) + [f"--video_path={changed}", f"--inference_ckpt_path={model}"]
    assert eval_script.main(common + [f"--result_path={tmp_path / 'same'}"]) == 0
    assert (tmp_path / "same" / "synthetic_split.json").is_file(), "made again where the results go"
    extra = changed / classes[1] / items[-1][2].name.replace(".avi", "_copy.avi")
    shutil.copy(items[-1][2], extra)
    capsys.readouterr()
    code = eval_script.main(common + [
                                                            f"--result_path={tmp_path / 'eval'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and [e for e in err if e.startswith("error:")] == err[-1:]
    assert err[-1].startswith(f"error: {changed} no longer gives the split the model was trained on")


def test_the_launch_script_takes_a_plain_folder(folder, tmp_path):
    """ANNOTATION_PATH 'none': the script passes the folder on and train.py splits it."""
    from tests.helpers.scripts import run_script

    options = [o for o in TINY_RUN_OPTIONS if not o.startswith("--dataset")]
    res = run_script("run_standalone_train.sh", "0", "synthetic", str(folder), "none", str(tmp_path / "run"), "none",
                     *options, "--n_epochs=1", "--batch_size=8")
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "run" / "synthetic_split.json").is_file() and list((tmp_path / "run").glob("*.ckpt"))
