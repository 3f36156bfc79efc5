import json
import subprocess
import sys
from pathlib import Path

from check_dataset import main as check_dataset_main
from data_fixtures import tiny_annotated_dataset


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
    assert "6 videos (4 training, 2 validation), 2 classes, 3 ok, 1 frame-count mismatch, 1 missing folder, 1 unreadable frame" in captured.out
    assert "v_B_1: 9 frames on disk, annotation says 10" in captured.err
    assert "image_00003.jpg" in captured.err


def test_missing_annotation_file_is_a_user_error(tmp_path):
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run([sys.executable, "check_dataset.py", "--annotation_path", str(tmp_path / "x.json"),
                          "--video_path", str(tmp_path)], cwd=root, capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.startswith("error: annotation file")
