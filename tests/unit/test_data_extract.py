import os

import pytest

from src.config import REPO_ROOT
from src.data.extract import FAILURES_NAME, STAMP_NAME, extract_all, extract_video
from src.data.frames import count_frames
from src.atomic import temp_path
from src.data.synthetic import moving_frames, write_video
from src.errors import UserError
from src.generate_video_jpgs import main as generate_video_jpgs
from tests.helpers.media import write_noise_video
from tests.helpers.scripts import TEST_DATA

ODD_NAMES = ["v.with.dots", "brackets [x] (y)", "a&b#c!", "space name", "naïve_日本"]


def test_odd_names_corrupt_file_and_failures_report(tmp_path, capsys):
    videos, target = tmp_path / "videos", tmp_path / "jpg"
    for i, name in enumerate(ODD_NAMES):
        write_noise_video(videos / "Cls.1" / f"{name}.avi", n_frames=3 + i, seed=i)
    (videos / "Cls.1" / "corrupt.avi").write_bytes(b"RIFF garbage" * 10)
    (videos / "Cls.1" / "empty.mp4").write_bytes(b"")
    code = generate_video_jpgs(["--video_path", str(videos), "--target_path", str(target),
                                "--size", "32", "--n_jobs", "2", "--no_progress"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "7 videos, 5 extracted, 0 skipped (already complete), 2 failed, 25 frames written (0.0 MB)" in out
    assert "corrupt.avi" in err and "empty.mp4" in err
    failures = (target / FAILURES_NAME).read_text(encoding="utf-8")
    assert "corrupt.avi" in failures and "empty.mp4" in failures
    for i, name in enumerate(ODD_NAMES):
        frames = sorted((target / "Cls.1" / name).glob("image_*"))
        assert [f.name for f in frames] == [f"image_{t:05d}.jpg" for t in range(1, 4 + i)]
    # failed videos leave nothing that looks complete (no folder, no partial)
    assert sorted(p.name for p in (target / "Cls.1").iterdir()) == sorted(ODD_NAMES)


def test_rerun_skips_complete_and_redoes_partial(tmp_path, capsys):
    videos, target = tmp_path / "videos", tmp_path / "jpg"
    write_noise_video(videos / "A" / "one.avi", n_frames=4)
    write_noise_video(videos / "A" / "two.avi", n_frames=5)
    write_noise_video(videos / "flat.mp4", n_frames=2)
    assert generate_video_jpgs(["--video_path", str(videos), "--target_path", str(target),
                                "--size", "0", "--n_jobs", "1", "--no_progress"]) == 0
    assert count_frames(target / "flat") == 2  # a flat folder of videos works too
    # simulate a crash in the middle of "two": only the partial folder of a process now gone remains
    partial = temp_path(target / "A" / "two", pid=2 ** 40)
    (target / "A" / "two").rename(partial)
    (partial / "image_00005.jpg").unlink()
    summary = extract_all(videos, target, size=0, n_jobs=1, progress=False)
    assert (summary["done"], summary["skipped"], summary["failed"], summary["frames"]) == (1, 2, 0, 5)
    assert count_frames(target / "A" / "two") == 5
    assert not partial.exists()
    # a folder without the stamp (another tool, an older run) is redone, not trusted
    (target / "A" / "one" / STAMP_NAME).unlink()
    summary = extract_all(videos, target, size=0, n_jobs=1, progress=False)
    assert (summary["done"], summary["skipped"]) == (1, 2)
    assert (target / "A" / "one" / STAMP_NAME).is_file()


def test_replaced_video_is_extracted_again(tmp_path, capsys):
    videos, target = tmp_path / "videos", tmp_path / "jpg"
    video = write_noise_video(videos / "A" / "v.avi", n_frames=4, seed=1)
    assert extract_all(videos, target, size=0, n_jobs=1, progress=False)["done"] == 1
    first = (target / "A" / "v" / "image_00001.jpg").read_bytes()
    write_noise_video(video, n_frames=6, seed=2)  # new content and size
    summary = extract_all(videos, target, size=0, n_jobs=1, progress=False)
    assert (summary["done"], summary["skipped"], summary["frames"]) == (1, 0, 6)
    assert count_frames(target / "A" / "v") == 6 and (target / "A" / "v" / "image_00001.jpg").read_bytes() != first
    assert sorted(p.name for p in (target / "A").iterdir()) == ["v"]  # no temporary folder left
    # same size, new mtime (e.g. restored from a backup of another version): redone as well
    os.utime(video, ns=(video.stat().st_atime_ns, video.stat().st_mtime_ns + 10**9))
    assert extract_all(videos, target, size=0, n_jobs=1, progress=False)["done"] == 1
    assert extract_all(videos, target, size=0, n_jobs=1, progress=False)["skipped"] == 1


def test_truncated_video_is_reported_short(tmp_path, capsys):
    """A real truncated file: 16-frame XVID written by OpenCV with the last part of its bytes cut off."""
    videos, target = tmp_path / "videos", tmp_path / "jpg"
    whole = write_video(videos / "A" / "whole.avi", moving_frames(16, 48, 64), "XVID")
    data = whole.read_bytes()
    cut = videos / "A" / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.9)])
    code = generate_video_jpgs(["--video_path", str(videos), "--target_path", str(target), "--size", "0",
                                "--n_jobs", "1", "--no_progress"])
    out, err = capsys.readouterr()
    n = count_frames(target / "A" / "cut")
    assert 0 < n < 16 and count_frames(target / "A" / "whole") == 16
    assert code == 0 and f"2 extracted, 0 skipped (already complete), 0 failed, {16 + n} frames written" in out
    assert f"warning: {cut}: short decode: {n} of the 16 frames" in err
    failures = (target / FAILURES_NAME).read_text(encoding="utf-8")
    assert str(cut) in failures and str(whole) not in failures
    # a re-run skips it but still reports it; a complete replacement clears the report
    extract_all(videos, target, size=0, n_jobs=1, progress=False)
    assert str(cut) in (target / FAILURES_NAME).read_text(encoding="utf-8")
    write_video(cut, moving_frames(16, 48, 64), "XVID")
    summary = extract_all(videos, target, size=0, n_jobs=1, progress=False)
    assert summary["done"] == 1 and not summary["short"] and not (target / FAILURES_NAME).exists()
    assert count_frames(target / "A" / "cut") == 16


def test_packed_b_frame_avi_is_not_short(tmp_path):
    """UCF101-style XVID with packed B-frames decodes 2 frames fewer than its header declares, yet is whole."""
    video = TEST_DATA / "xvid_bframes_gop40.avi"
    result = extract_video(video, tmp_path / "out", size=0)
    assert (result.status, result.frames, result.declared, result.short) == ("done", 88, 90, False)


def test_resize_shorter_side(tmp_path):
    video = write_noise_video(tmp_path / "v.avi", n_frames=2, size=(64, 48))
    result = extract_video(video, tmp_path / "out", size=24)
    assert (result.status, result.frames, result.short) == ("done", 2, False)
    import cv2
    assert cv2.imread(str(tmp_path / "out" / "image_00001.jpg")).shape == (24, 32, 3)


def test_bad_options_are_user_errors(tmp_path, capsys):
    assert generate_video_jpgs(["--video_path", str(tmp_path / "none"), "--target_path", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: --video_path")
    with pytest.raises(UserError):
        extract_all(tmp_path / "none", tmp_path / "t")


@pytest.mark.parametrize("script", ["generate_video_jpgs.py", "generate_ucf101_json.py", "generate_hmdb51_json.py"])
def test_entry_scripts_run_from_src_and_repo_root(script):
    import subprocess
    import sys

    root = REPO_ROOT
    for cwd, path in ((root / "src", script), (root, f"src/{script}")):
        run = subprocess.run([sys.executable, path, "--help"], cwd=cwd, capture_output=True, text=True)
        assert run.returncode == 0 and "--video_path" in run.stdout, run.stderr
