"""src.atomic: one temporary-name pattern for files and folders, and the cleanup that knows it."""
import os

import pytest

from src.atomic import atomic_dir, atomic_output, remove_stale_temps, scratch_dir, temp_path, write_json
from src.errors import UserError

GONE = 2 ** 40  # a pid no process can have


def test_temp_names_are_hidden_keep_the_suffix_and_name_the_writer(tmp_path):
    assert temp_path(tmp_path / "best.ckpt").name == f".best.tmp{os.getpid()}.ckpt"
    assert temp_path(tmp_path / "v_x_g01", tag="old", pid=7).name == ".v_x_g01.tmp7old"


def test_atomic_output_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "sub" / "a.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("{half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == '{"a": 1}' and os.listdir(target.parent) == ["a.json"]


def test_atomic_dir_swaps_a_complete_folder_in_and_keeps_the_old_one_on_failure(tmp_path):
    target = tmp_path / "video"
    for content in ("first", "second"):
        with atomic_dir(target) as tmp:
            (tmp / "f.txt").write_text(content)
    assert (target / "f.txt").read_text() == "second"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "f.txt").write_text("third, never finished")
        raise RuntimeError("decode failed")
    assert (target / "f.txt").read_text() == "second" and os.listdir(tmp_path) == ["video"]


def test_a_write_error_is_one_user_error_line(tmp_path):
    with pytest.raises(UserError, match=r"^cannot write .*a\.txt \(.*\): check free space"):
        with atomic_output(tmp_path / "a.txt") as tmp:
            tmp.write_text("half")
            raise OSError(28, "No space left on device")
    assert os.listdir(tmp_path) == []


def test_stale_temps_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    dead_file = temp_path(tmp_path / "best.ckpt", pid=GONE)
    dead_dir = temp_path(tmp_path / "v_x", tag="old", pid=GONE)
    live = temp_path(tmp_path / "latest.ckpt")  # this process: still writing it
    other = tmp_path / ".notes.tmp"  # not the pattern: not ours to remove
    dead_file.write_text("x")
    dead_dir.mkdir()
    (dead_dir / "image_00001.jpg").write_text("x")
    live.write_text("x")
    other.write_text("x")
    assert remove_stale_temps(tmp_path, tmp_path / "v_x") == [dead_dir]
    assert remove_stale_temps(tmp_path) == [dead_file]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])
    assert remove_stale_temps(tmp_path / "absent") == []


def test_scratch_dir_is_private_and_removed(tmp_path):
    target = tmp_path / "m.onnx"
    with scratch_dir(target) as work:
        assert work.is_dir() and work.parent == tmp_path and work.name.startswith(".m.tmp")
        (work / "m.onnx").write_text("x")
    assert os.listdir(tmp_path) == []


def test_what_stands_at_a_temporary_name_is_replaced_not_written_through(tmp_path):
    target = tmp_path / "a.json"
    temp_path(target).write_text("a dead writer's, same pid")
    write_json(target, [1])
    temp_path(target).mkdir()
    (temp_path(target) / "x").write_text("x")
    write_json(target, [2])
    assert target.read_text() == "[2]" and sorted(os.listdir(tmp_path)) == ["a.json"]
