"""src/data/list_annotations.py: a plain '<relative/path> <label>' list (MMAction2's format) becomes the same
annotation JSON the training and evaluation pipelines read."""
import json

import pytest

from src.data.datasets import load_annotation
from src.data.list_annotations import generate_from_lists
from src.data.synthetic import CLASSES, generate
from src.errors import UserError


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    generate(root, videos_per_class=1, test_videos_per_class=1, frames=6, size=32, seed=0, n_jobs=1, progress=False)
    return root / "videos"


def _lists(tmp_path, videos, label_of):
    train, val = [], []
    for i, (name, _, _) in enumerate(CLASSES[:4]):
        files = sorted((videos / name).glob("*.avi"))
        train.append(f"{files[0].relative_to(videos)} {label_of(i, name)}")
        val.append(f"{files[1].relative_to(videos)} {label_of(i, name)}")
    (tmp_path / "train.txt").write_text("\n".join(train) + "\n")
    (tmp_path / "val.txt").write_text("\n".join(val) + "\n")
    return tmp_path / "train.txt", tmp_path / "val.txt"


def test_index_labels_with_class_names_become_the_annotation_json(tmp_path, videos, capsys):
    train, val = _lists(tmp_path, videos, lambda i, name: i)
    names = [name for name, _, _ in CLASSES[:4]]
    (tmp_path / "classes.txt").write_text("\n".join(names) + "\n")
    out = tmp_path / "mydata.json"
    assert generate_from_lists(train, val, videos, out, tmp_path / "classes.txt", n_jobs=1) == 0
    assert "mydata.json: 4 classes, 4 training, 4 validation, 0 listed but missing" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["labels"] == names
    entries, class_names = load_annotation(out, videos, "validation")
    assert class_names == names and [e.label_index for e in entries] == [0, 1, 2, 3]
    assert all(e.n_frames == 6 for e in entries)


def test_name_labels_need_no_class_file_and_bad_lines_are_one_error(tmp_path, videos):
    train, val = _lists(tmp_path, videos, lambda i, name: name)
    assert generate_from_lists(train, val, videos, tmp_path / "a.json", n_jobs=1) == 0
    assert json.loads((tmp_path / "a.json").read_text())["labels"] == sorted(n for n, _, _ in CLASSES[:4])
    (tmp_path / "bad.txt").write_text("only_a_path\n")
    with pytest.raises(UserError, match=r"bad.txt:1: expected '<relative/path> <label>'"):
        generate_from_lists(tmp_path / "bad.txt", val, videos, tmp_path / "b.json")
    index_train, _ = _lists(tmp_path, videos, lambda i, name: i)
    with pytest.raises(UserError, match="is an index: pass --class_names"):
        generate_from_lists(index_train, val, videos, tmp_path / "c.json")
    train, val = _lists(tmp_path, videos, lambda i, name: name)
    (tmp_path / "two.txt").write_text("\n".join(n for n, _, _ in CLASSES[:2]) + "\n")
    with pytest.raises(UserError, match=r"train.txt:3: class '.*' is not in --class_names"):
        generate_from_lists(train, val, videos, tmp_path / "d.json", tmp_path / "two.txt")


def test_a_missing_video_is_an_error_and_nothing_is_written(tmp_path, videos, capsys):
    train, val = _lists(tmp_path, videos, lambda i, name: name)
    val.write_text(val.read_text() + "nowhere/v_gone.avi MoveLeft\n")
    assert generate_from_lists(train, val, videos, tmp_path / "m.json", n_jobs=1) == 1
    assert "1 listed videos cannot be found" in capsys.readouterr().err and not (tmp_path / "m.json").exists()
