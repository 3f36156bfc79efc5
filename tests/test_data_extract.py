import pytest

from src.data.extract import FAILURES_NAME, extract_all, extract_video
from src.errors import UserError
from src.generate_video_jpgs import main as generate_video_jpgs
from data_fixtures import write_video

ODD_NAMES = ["v.with.dots", "brackets [x] (y)", "a&b#c!", "space name", "naïve_日本"]


def test_odd_names_corrupt_file_and_failures_report(tmp_path, capsys):
    videos, target = tmp_path / "videos", tmp_path / "jpg"
    for i, name in enumerate(ODD_NAMES):
        write_video(videos / "Cls.1" / f"{name}.avi", n_frames=3 + i, seed=i)
    (videos / "Cls.1" / "corrupt.avi").write_bytes(b"RIFF garbage" * 10)
    (videos / "Cls.1" / "empty.mp4").write_bytes(b"")
    code = generate_video_jpgs(["--video_path", str(videos), "--target_path", str(target),
                                "--size", "32", "--n_jobs", "2", "--no_progress"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "7 videos, 5 extracted, 0 skipped (already complete), 2 failed, 25 frames written" in out
    assert "corrupt.avi" in err and "empty.mp4" in err
    failures = (target / FAILURES_NAME).read_text(encoding="utf-8")
    assert "corrupt.avi" in failures and "empty.mp4" in failures
    for i, name in enumerate(ODD_NAMES):
        frames = sorted((target / "Cls.1" / name).iterdir())
        assert [f.name for f in frames] == [f"image_{t:05d}.jpg" for t in range(1, 4 + i)]
    # failed videos leave nothing that looks complete (no folder, no partial)
    assert sorted(p.name for p in (target / "Cls.1").iterdir()) == sorted(ODD_NAMES)


def test_rerun_skips_complete_and_redoes_partial(tmp_path, capsys):
    videos, target = tmp_path / "videos", tmp_path / "jpg"
    write_video(videos / "A" / "one.avi", n_frames=4)
    write_video(videos / "A" / "two.avi", n_frames=5)
    write_video(videos / "flat.mp4", n_frames=2)
    assert generate_video_jpgs(["--video_path", str(videos), "--target_path", str(target),
                                "--size", "0", "--n_jobs", "1", "--no_progress"]) == 0
    assert len(list((target / "flat").iterdir())) == 2  # a flat folder of videos works too
    # simulate a crash in the middle of "two": only its partial folder remains
    (target / "A" / "two").rename(target / "A" / ".two.partial")
    (target / "A" / ".two.partial" / "image_00005.jpg").unlink()
    summary = extract_all(videos, target, size=0, n_jobs=1, progress=False)
    assert (summary["done"], summary["skipped"], summary["failed"], summary["frames"]) == (1, 2, 0, 5)
    assert len(list((target / "A" / "two").iterdir())) == 5
    assert not (target / "A" / ".two.partial").exists()


def test_resize_shorter_side(tmp_path):
    video = write_video(tmp_path / "v.avi", n_frames=2, size=(64, 48))
    assert extract_video(video, tmp_path / "out", size=24) == ("done", 2)
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
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for cwd, path in ((root / "src", script), (root, f"src/{script}")):
        run = subprocess.run([sys.executable, path, "--help"], cwd=cwd, capture_output=True, text=True)
        assert run.returncode == 0 and "--video_path" in run.stdout, run.stderr
