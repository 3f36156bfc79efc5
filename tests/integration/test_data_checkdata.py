import json
import subprocess
import sys

import numpy as np

from check_dataset import main as check_dataset_main
from src.config import REPO_ROOT
from tests.helpers.media import tiny_annotated_dataset


def test_clean_dataset_passes(tmp_path, capsys):
    ann, jpg = tiny_annotated_dataset(tmp_path)
    assert check_dataset_main(["--annotation_path", str(ann), "--video_path", str(jpg)]) == 0
    assert "check_dataset: 5 videos (3 training, 2 validation), 2 classes, 5 ok, no problems" in capsys.readouterr().out


def test_frame_count_mismatch_missing_folder_and_bad_frame(tmp_path, capsys):
    ann, jpg = tiny_annotated_dataset(tmp_path)
    (jpg / "B" / "v_B_1" / "image_00010.jpg").unlink()           # 10 -> 9 frames on disk
    (jpg / "A" / "v_A_2" / "image_00003.jpg").write_bytes(b"junk")  # last frame corrupt
    data = json.loads(ann.read_text())
    data["database"]["v_A_ghost"] = {"subset": "training", "annotations": {"label": "A", "segment": [1, 5]}}
    ann.write_text(json.dumps(data))
    assert check_dataset_main(["--annotation_path", str(ann), "--video_path", str(jpg)]) == 1
    captured = capsys.readouterr()
    assert ("6 videos (4 training, 2 validation), 2 classes, 3 ok, 1 frame-count mismatch, 1 missing folder, "
            "1 unreadable frame") in captured.out
    assert "v_B_1: 9 frames on disk, annotation says 10" in captured.err
    assert "image_00003.jpg" in captured.err


def test_missing_annotation_file_is_a_user_error(tmp_path):
    root = REPO_ROOT
    run = subprocess.run([sys.executable, "check_dataset.py", "--annotation_path", str(tmp_path / "x.json"),
                          "--video_path", str(tmp_path)], cwd=root, capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.startswith("error: annotation file")


def test_zero_byte_frame_and_garbage_middle_frames(tmp_path, capsys):
    ann, jpg = tiny_annotated_dataset(tmp_path)
    (jpg / "B" / "v_B_1" / "image_00004.jpg").write_bytes(b"")                 # zero-byte frame
    middle = jpg / "A" / "v_A_0" / "image_00003.jpg"
    middle.write_bytes(np.random.default_rng(0).integers(0, 255, 2000, dtype=np.uint8).tobytes())  # garbage
    cut = jpg / "A" / "v_A_2" / "image_00002.jpg"
    cut.write_bytes(cut.read_bytes()[:-2])                                      # cut JPEG (no end marker)
    assert check_dataset_main(["--annotation_path", str(ann), "--video_path", str(jpg)]) == 1
    captured = capsys.readouterr()
    assert "4 ok, 1 unreadable frame" in captured.out
    assert "v_B_1/image_00004.jpg is empty (0 bytes)" in captured.err
    assert check_dataset_main(["--annotation_path", str(ann), "--video_path", str(jpg), "--full"]) == 1
    captured = capsys.readouterr()
    assert "2 ok, 3 unreadable frame" in captured.out
    assert "v_A_0/image_00003.jpg does not decode" in captured.err
    assert "v_A_2/image_00002.jpg does not decode" in captured.err


def test_videos_are_checked_too(tmp_path, capsys, caplog):
    caplog.set_level("INFO", logger="resnet3d")
    from src.data.synthetic import moving_frames, write_video

    database = {}
    for i, (label, n) in enumerate((("A", 30), ("A", 30), ("B", 30))):
        write_video(tmp_path / "videos" / label / f"v{i}.avi", moving_frames(n, 32, 32, seed=i), "XVID")
        database[f"v{i}"] = {"subset": "training", "annotations": {"label": label, "segment": [1, n + 1]}}
    database["v3"] = {"subset": "validation", "annotations": {"label": "B", "segment": [1, 11]}}
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"labels": ["A", "B"], "database": database}))
    videos = str(tmp_path / "videos")
    assert check_dataset_main(["--annotation_path", str(ann), "--video_path", videos]) == 1
    out = capsys.readouterr().out
    assert "input_format: video (detected:" in caplog.text and "3 ok, 1 missing video" in out
    del database["v3"]
    ann.write_text(json.dumps({"labels": ["A", "B"], "database": database}))
    assert check_dataset_main(["--annotation_path", str(ann), "--video_path", videos]) == 0
    assert "3 ok, no problems" in capsys.readouterr().out
    cut = tmp_path / "videos" / "A" / "v1.avi"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size * 9 // 10])  # truncated: the end is gone
    assert check_dataset_main(["--annotation_path", str(ann), "--video_path", videos]) == 1
    captured = capsys.readouterr()
    assert "2 ok, 1 unreadable video" in captured.out and "v1.avi decodes only" in captured.err
    database["v0"]["annotations"]["segment"] = [1, 25]  # annotation shorter than the video: only --full sees it
    ann.write_text(json.dumps({"labels": ["A", "B"], "database": database}))
    assert check_dataset_main(["--annotation_path", str(ann), "--video_path", videos, "--full"]) == 1
    captured = capsys.readouterr()
    assert "1 ok, 2 frame-count mismatch" in captured.out
    assert "v0.avi: 30 frames decode, annotation says 24" in captured.err
    assert "v1.avi: " in captured.err and "frames decode, annotation says 30" in captured.err
