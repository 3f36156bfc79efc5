"""Files and folders the suite did not write cannot steer a run, and every fault ends in one line: planted links
at the lock and at temporary names, read-only targets, degenerate datasets, class names with blanks, a fast-op
library path that is no library, a config naming another dataset than its annotation. Real files, real links,
real read-only mounts (root ignores chmod)."""
import json
import logging
import os

import pytest

import train as train_script
from src.atomic import atomic_dir, temp_path, writable_dir, write_json
from src.data.checkdata import main as check_dataset_main
from src.data.degenerate import check_dataset_name, warn_degenerate
from src.data.list_annotations import generate_from_lists
from src.errors import UserError
from src.rundir import LOCK, RunDir
from tests.helpers.media import tiny_annotated_dataset, write_frames, write_noise_video

SECRET = "not yours to overwrite\n"


@pytest.fixture
def read_only_folder(tmp_path, mount_tmpfs):
    """A folder no write can go into: a read-only tmpfs for root (chmod does not stop root), else mode 0555."""
    if os.geteuid() == 0:
        yield mount_tmpfs("ro,size=1m")
        return
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


def _victim(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text(SECRET)
    return victim


# --- links and odd files where the suite writes ------------------------------------------------------------
def test_a_link_at_the_lock_is_refused_and_its_target_untouched(tmp_path):
    victim, run = _victim(tmp_path), tmp_path / "run"
    run.mkdir()
    (run / LOCK).symlink_to(victim)
    with pytest.raises(UserError, match=r"\.lock is a symbolic link; remove it"):
        RunDir(run, "ucf101").lock()
    assert victim.read_text() == SECRET
    (run / LOCK).unlink()
    (run / LOCK).symlink_to(tmp_path / "created_through_the_link")  # dangling: not created either
    with pytest.raises(UserError, match="is a symbolic link"):
        RunDir(run, "ucf101").lock()
    assert not (tmp_path / "created_through_the_link").exists()


def test_train_py_with_a_planted_lock_link_ends_in_one_error_line(tmp_path, capsys):
    victim, run = _victim(tmp_path), tmp_path / "run"
    run.mkdir()
    (run / LOCK).symlink_to(victim)
    code = train_script.main(["--device_target=CPU", "--dataset=synthetic", f"--result_path={run}",
                              f"--video_path={tmp_path}", f"--annotation_path={tmp_path / 'a.json'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1] == (f"error: {run / LOCK} is a symbolic link; remove it (a run never makes one, "
                                     f"and it is not followed: its target is left untouched)")
    assert victim.read_text() == SECRET


def test_a_hard_link_a_fifo_or_a_folder_at_the_lock_is_refused(tmp_path):
    victim, run = _victim(tmp_path), tmp_path / "run"
    run.mkdir()
    os.link(victim, run / LOCK)
    with pytest.raises(UserError, match=r"\.lock has 2 hard links; remove it"):
        RunDir(run, "ucf101").lock()
    assert victim.read_text() == SECRET
    (run / LOCK).unlink()
    os.mkfifo(run / LOCK)
    with pytest.raises(UserError, match=r"\.lock is not a regular file; remove it"):
        RunDir(run, "ucf101").lock()
    (run / LOCK).unlink()
    (run / LOCK).mkdir()
    with pytest.raises(UserError, match=r"cannot open the lock file .*\.lock \(Is a directory\): remove it"):
        RunDir(run, "ucf101").lock()
    (run / LOCK).rmdir()
    RunDir(run, "ucf101").lock().unlock()  # a plain lock file of its own works as ever
    assert (run / LOCK).read_text().startswith(f"pid {os.getpid()} ")


def test_links_at_temporary_names_are_removed_not_followed(tmp_path):
    victim = _victim(tmp_path)
    target = tmp_path / "out" / "best_metrics.json"
    target.parent.mkdir()
    temp_path(target).symlink_to(victim)
    write_json(target, {"top1": 1.0})
    assert json.loads(target.read_text()) == {"top1": 1.0} and victim.read_text() == SECRET
    assert not os.path.lexists(temp_path(target))
    target.unlink()
    target.symlink_to(victim)  # a link at the final name is replaced, its target untouched
    write_json(target, {"top1": 0.5})
    assert not target.is_symlink() and victim.read_text() == SECRET


def test_atomic_dir_replaces_links_at_its_names_without_following_them(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text(SECRET)
    folder = tmp_path / "jpg" / "A" / "v1"
    folder.parent.mkdir(parents=True)
    folder.symlink_to(elsewhere, target_is_directory=True)
    temp_path(folder).symlink_to(elsewhere, target_is_directory=True)
    temp_path(folder, tag="old").symlink_to(elsewhere, target_is_directory=True)
    with atomic_dir(folder) as tmp:
        (tmp / "image_00001.jpg").write_bytes(b"x")
    assert folder.is_dir() and not folder.is_symlink() and (folder / "image_00001.jpg").exists()
    assert (elsewhere / "keep.txt").read_text() == SECRET and sorted(os.listdir(elsewhere)) == ["keep.txt"]
    assert sorted(os.listdir(folder.parent)) == ["v1"]


# --- read-only targets ---------------------------------------------------------------------------------------
def test_frame_extraction_into_a_read_only_target_is_one_error_line(tmp_path, read_only_folder, capsys):
    from src.generate_video_jpgs import main as extract_main

    write_noise_video(tmp_path / "videos" / "A" / "v1.avi")
    for target, says in ((read_only_folder, f"cannot write in {read_only_folder} ("),
                         (read_only_folder / "jpg", f"cannot create folder {read_only_folder / 'jpg'} (")):
        code = extract_main(["--video_path", str(tmp_path / "videos"), "--target_path", str(target),
                             "--no_progress"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and err[0].startswith(f"error: {says}"), err


def test_writable_dir_names_the_folder_and_the_fix(read_only_folder):
    with pytest.raises(UserError, match=rf"cannot write in {read_only_folder} \(.*\): pass a writable --x"):
        writable_dir(read_only_folder, "pass a writable --x")


def test_preprocess_into_a_read_only_target_is_one_error_line(infer310_workspace, read_only_folder, capsys):
    import preprocess

    code = preprocess.main(infer310_workspace["args"] + [f"--output_path={read_only_folder / 'pre'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and [e for e in err if e.startswith("error:")] == err[-1:]
    assert err[-1].startswith(f"error: cannot create folder {read_only_folder / 'pre'}")


def test_a_link_planted_at_mindspores_partial_checkpoint_name_is_not_followed(tmp_path):
    """MindSpore's saver chmods and removes ``<tmp>.tmp`` before writing; a link planted there (the name is
    predictable: the pid) is removed, its target keeps its mode and bytes."""
    import mindspore.nn as nn

    from src.atomic import temp_path
    from src.weights.checkpoint import save_checkpoint

    target = tmp_path / "secret.txt"
    target.write_text(SECRET)
    target.chmod(0o640)
    path = tmp_path / "run" / "model.ckpt"
    path.parent.mkdir()
    os.symlink(target, temp_path(path).with_suffix(".tmp"))
    save_checkpoint(nn.Dense(2, 2), path)
    assert path.is_file() and target.read_text() == SECRET and (target.stat().st_mode & 0o777) == 0o640


# --- degenerate data -----------------------------------------------------------------------------------------
def _degenerate_dataset(tmp_path):
    """Classes A, B, C, D: C has no videos at all, D only a validation video; v_A_0 has a gap (frame 2
    missing), v_B_3 only 3 frames."""
    ann, jpg = tiny_annotated_dataset(tmp_path, n_frames=(20, 20, 20, 3, 20), classes=("A", "B"))
    gap = jpg / "A" / "v_A_0"
    (gap / "image_00002.jpg").unlink()
    data = json.loads(ann.read_text())
    data["database"]["v_A_0"]["annotations"]["segment"] = [1, 20]  # as a count of the 19 frames would give
    write_frames(jpg / "D" / "v_D_9", 20)
    data["database"]["v_D_9"] = {"subset": "validation", "annotations": {"label": "D", "segment": [1, 21]}}
    data["labels"] = ["A", "B", "C", "D"]
    ann.write_text(json.dumps(data))
    return ann, jpg


EXPECTED_WARNINGS = ["warning: class 'C' has no training videos: the network never learns it",
                     "warning: class 'D' has no training videos: the network never learns it",
                     "warning: class 'C' has no validation videos: its accuracy is never measured",
                     "warning: video v_B_3 (class 'B') has 3 frames, fewer than a clip of 16: its frames repeat "
                     "to fill the clip"]


def test_check_dataset_warns_about_degenerate_data_and_fails_on_a_gap(tmp_path, capsys):
    ann, jpg = _degenerate_dataset(tmp_path)
    assert check_dataset_main(["--annotation_path", str(ann), "--video_path", str(jpg)]) == 1
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert [line for line in err if line.startswith("warning:")] == EXPECTED_WARNINGS
    assert (f"problem: {jpg / 'A' / 'v_A_0' / 'image_00002.jpg'} is missing: the 19 frames on disk are not "
            f"numbered 1..19 (a gap); re-extract this video") in err
    assert "6 videos (3 training, 3 validation), 4 classes, 5 ok, 1 frame gap" in captured.out
    assert check_dataset_main(["--annotation_path", str(ann), "--video_path", str(jpg),
                               "--sample_duration", "2"]) == 1
    assert "fewer than a clip" not in capsys.readouterr().err


def test_training_start_warning_covers_gaps_too(tmp_path, caplog):
    ann, jpg = _degenerate_dataset(tmp_path)
    with caplog.at_level(logging.WARNING, logger="resnet3d"):
        lines = warn_degenerate(ann, jpg, clip_frames=16)
    assert [f"warning: {line}" for line in lines[:4]] == EXPECTED_WARNINGS
    assert lines[4] == (f"video v_A_0: {jpg / 'A' / 'v_A_0' / 'image_00002.jpg'} is missing while later frames "
                        f"exist: training stops when a clip reaches it; re-extract this video")
    assert [r.getMessage() for r in caplog.records] == [f"warning: {line}" for line in lines]


def test_one_class_and_many_short_videos_are_said_once_each_then_counted(tmp_path, caplog):
    ann, jpg = tiny_annotated_dataset(tmp_path, n_videos=13, n_frames=(4,), classes=("Only",))
    with caplog.at_level(logging.WARNING, logger="resnet3d"):
        lines = warn_degenerate(ann, jpg, clip_frames=8)
    assert lines[0].startswith("the dataset has one class ('Only'): every prediction is right")
    assert sum("fewer than a clip of 8" in line for line in lines) == 10
    assert lines[-1] == "... and 3 more of this kind (short)"


def test_list_annotations_warns_about_gaps_and_missing_classes(tmp_path, capsys):
    root = tmp_path / "frames"
    write_frames(root / "walk" / "a", 20)
    write_frames(root / "walk" / "b", 20)
    write_frames(root / "run" / "c", 20)
    (root / "walk" / "b" / "image_00007.jpg").unlink()
    (tmp_path / "train.txt").write_text("walk/a walk\nrun/c run\n")
    (tmp_path / "val.txt").write_text("walk/b walk\n")
    assert generate_from_lists(tmp_path / "train.txt", tmp_path / "val.txt", root, tmp_path / "o.json", n_jobs=1) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == ["warning: class 'run' has no validation videos: its accuracy is never measured",
                   f"warning: video walk/b: {root / 'walk' / 'b' / 'image_00007.jpg'} is missing while later frames "
                   f"exist: training stops when a clip reaches it; re-extract this video"]


# --- class names with blanks ----------------------------------------------------------------------------------
@pytest.fixture
def spaced(tmp_path):
    root = tmp_path / "videos"
    for i, name in enumerate(("Apply Eye Makeup", "Walk")):
        for subset in ("t", "v"):
            write_noise_video(root / name / f"{subset}{i}.avi", n_frames=4, seed=i)
    return root


def test_a_class_name_with_blanks_is_read_whole(tmp_path, spaced, capsys):
    for s in "tv":
        (tmp_path / f"{s}.txt").write_text(f"Apply Eye Makeup/{s}0.avi Apply Eye Makeup\nWalk/{s}1.avi Walk\n")
    out = tmp_path / "a.json"
    assert generate_from_lists(tmp_path / "t.txt", tmp_path / "v.txt", spaced, out, n_jobs=1,
                               sample_duration=4) == 0  # without class names: the cut whose path exists
    assert json.loads(out.read_text())["labels"] == ["Apply Eye Makeup", "Walk"]
    (tmp_path / "names.txt").write_text("Apply Eye Makeup\nWalk\n")
    assert generate_from_lists(tmp_path / "t.txt", tmp_path / "v.txt", spaced, out, tmp_path / "names.txt",
                               n_jobs=1, sample_duration=4) == 0
    assert json.loads(out.read_text())["labels"] == ["Apply Eye Makeup", "Walk"]
    (tmp_path / "t.txt").write_text("Apply Eye Makeup/t0.avi\tApply Eye Makeup\nWalk/t1.avi\tWalk\n")
    assert generate_from_lists(tmp_path / "t.txt", tmp_path / "v.txt", spaced, out, n_jobs=1,
                               sample_duration=4) == 0  # a tab says where the label starts
    assert "0 listed but missing" in capsys.readouterr().out


def test_a_missing_video_with_blanks_says_how_to_list_the_name(tmp_path, spaced, capsys):
    (tmp_path / "t.txt").write_text("Apply Eye Makeup/gone.avi Apply Eye Makeup\nWalk/t1.avi Walk\n")
    (tmp_path / "v.txt").write_text("Walk/v1.avi Walk\n")
    assert generate_from_lists(tmp_path / "t.txt", tmp_path / "v.txt", spaced, tmp_path / "a.json", n_jobs=1) == 1
    err = capsys.readouterr().err
    assert "(a class name with blanks: put a tab between path and label)" in err


def test_two_readings_on_disk_are_one_error_naming_both(tmp_path, spaced):
    (spaced / "Apply Eye Makeup" / "t0.avi Apply Eye").write_bytes(b"x")  # a file named like that
    (tmp_path / "t.txt").write_text("Apply Eye Makeup/t0.avi Apply Eye Makeup\n")
    (tmp_path / "names.txt").write_text("Apply Eye Makeup\nMakeup\n")
    with pytest.raises(UserError, match=r"t.txt:1: .* reads as 'Apply Eye Makeup/t0.avi Apply Eye' of class "
                                        r"'Makeup' or 'Apply Eye Makeup/t0.avi' of class 'Apply Eye Makeup': put a "
                                        r"tab between path and label"):
        generate_from_lists(tmp_path / "t.txt", tmp_path / "t.txt", spaced, tmp_path / "a.json", tmp_path / "names.txt")


# --- the fast-op library path ---------------------------------------------------------------------------------
def test_a_requested_library_that_cannot_load_is_one_honest_warning(tmp_path, monkeypatch, caplog):
    from src.ops import fast_conv3d_status
    from src.ops.paths import LIBRARY_ENV
    from src.runtime import resolve_conv_impl

    fake = tmp_path / "passwd"
    fake.write_text("root:x:0:0:root:/root:/bin/bash\n")
    monkeypatch.setenv(LIBRARY_ENV, str(fake))
    with caplog.at_level(logging.WARNING, logger="src.ops.fast_conv3d"):
        assert fast_conv3d_status()[0] is False and resolve_conv_impl("CPU", "auto") == "native"
        fast_conv3d_status()
    said = [r.getMessage() for r in caplog.records if r.name == "src.ops.fast_conv3d"]
    assert len(said) == 1 and said[0].startswith(f"warning: {LIBRARY_ENV}={fake} cannot be loaded (")
    assert said[0].endswith(f": native convolutions run instead; point {LIBRARY_ENV} at a libconv3d_dnnl.so "
                            f"built by 'make ops', or unset it")


# --- a config naming another dataset -------------------------------------------------------------------------
def test_a_dataset_name_that_contradicts_the_annotation_is_warned_about(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="resnet3d"):
        line = check_dataset_name("ucf101", tmp_path / "hmdb51" / "json" / "hmdb51_1.json", 51)
        assert check_dataset_name("hmdb51", tmp_path / "mydata.json", 101).startswith(
            "dataset=hmdb51, but the annotation")
        assert check_dataset_name("ucf101", tmp_path / "json" / "split1.json", 51) is not None
    assert line == (f"dataset=ucf101, but the annotation {tmp_path / 'hmdb51' / 'json' / 'hmdb51_1.json'} looks like "
                    f"hmdb51 (its file name says hmdb51 and it has 51 classes, as hmdb51 has; ucf101 has 101): every "
                    f"output is named ucf101 (resnet3d-ucf101-*.ckpt, ucf101_eval.log); pass --dataset=hmdb51 (or "
                    f"hmdb51_config.yaml)")
    assert caplog.records[0].getMessage() == f"warning: {line}"
    assert check_dataset_name("ucf101", tmp_path / "ucf101_01.json", 101) is None
    assert check_dataset_name("ucf101", tmp_path / "ucf101_subset.json", 51) is None  # its own name wins
    assert check_dataset_name("synthetic", tmp_path / "hmdb51_1.json", 51) is None
    assert check_dataset_name("hmdb51", tmp_path / "hmdb51" / "ucf101_01.json", 101) is not None


def test_a_folder_held_by_a_running_training_is_said(tmp_path, caplog):
    """eval.py / export.py / predict.py given a result folder that a live training holds say so, and which
    epoch's best they use (another process holds the lock: a real one, flock in a child)."""
    import subprocess
    import sys

    from src.rundir import RunDir
    from src.weights.model_file import resolve_checkpoint

    run = RunDir(tmp_path, "synthetic").make()
    run.best_ckpt.write_bytes(b"x")
    run.best_metrics.write_text('{"epoch": 7}')
    assert run.holder() is None
    child = subprocess.Popen([sys.executable, "-c", "import sys; from src.rundir import RunDir; "
                              f"run = RunDir({str(tmp_path)!r}, 'synthetic').lock(); print('held', flush=True); "
                              "sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with caplog.at_level("WARNING", logger="resnet3d"):
            assert resolve_checkpoint(tmp_path, "synthetic", "ckpt_file") == run.best_ckpt
        said = [r.getMessage() for r in caplog.records]
        assert len(said) == 1 and f"is held by a running training (pid {child.pid} (-c))" in said[0]
        assert "using its best so far (epoch 7)" in said[0]
    finally:
        child.communicate("")
    caplog.clear()
    assert resolve_checkpoint(tmp_path, "synthetic", "ckpt_file") == run.best_ckpt and not caplog.records
