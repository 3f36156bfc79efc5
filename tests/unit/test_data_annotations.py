import json

import pytest

from src.data.annotations import generate, read_class_index
from src.errors import UserError
from src.generate_hmdb51_json import main as hmdb51_main
from src.generate_ucf101_json import main as ucf101_main
from tests.helpers.media import write_frames
from tests.helpers.scripts import TEST_DATA


def _ucf_labels(labels):
    labels.mkdir(parents=True, exist_ok=True)
    (labels / "classInd.txt").write_text("1 Run\r\n2 Jump\r\n")
    (labels / "trainlist01.txt").write_text("Run/v_Run_g02_c01.avi 1\nJump/v_Jump_g02_c01.avi 2\n"
                                           "Run/v_Run_g03_c01.avi 1\n")
    (labels / "testlist01.txt").write_text("Run/v_Run_g01_c01.avi\nJump/v_Jump_g01_c01.avi\n")


def _frames(jpg, names):
    for i, name in enumerate(names):
        label, vid = name.split("/")
        write_frames(jpg / label / vid, 3 + i, 8, 8)


def test_ucf101_counts_json_and_unlisted(tmp_path, capsys):
    _ucf_labels(tmp_path / "labels")
    _frames(tmp_path / "jpg", ["Run/v_Run_g02_c01", "Jump/v_Jump_g02_c01", "Run/v_Run_g03_c01",
                               "Run/v_Run_g01_c01", "Jump/v_Jump_g01_c01", "Jump/v_extra"])
    assert ucf101_main(["--dir_path", str(tmp_path / "labels"), "--video_path", str(tmp_path / "jpg"),
                        "--dst_dir_path", str(tmp_path / "json")]) == 0
    out = capsys.readouterr().out
    assert "ucf101_01.json: 2 classes, 3 training, 2 validation, 0 listed but missing on disk" in out
    assert "1 videos on disk are in no split" in out and "Jump/v_extra" in out
    data = json.loads((tmp_path / "json" / "ucf101_01.json").read_text())
    assert data["labels"] == ["Run", "Jump"]
    assert data["database"]["v_Jump_g02_c01"] == {"subset": "training",
                                                  "annotations": {"label": "Jump", "segment": [1, 5]}}
    assert data["database"]["v_Run_g01_c01"]["subset"] == "validation"
    assert not (tmp_path / "json" / "ucf101_02.json").exists()


def test_missing_video_is_an_error_unless_allowed(tmp_path, capsys):
    _ucf_labels(tmp_path / "labels")
    _frames(tmp_path / "jpg", ["Run/v_Run_g02_c01", "Jump/v_Jump_g02_c01", "Run/v_Run_g01_c01"])
    args = ["--dir_path", str(tmp_path / "labels"), "--video_path", str(tmp_path / "jpg"),
            "--dst_dir_path", str(tmp_path / "json")]
    assert ucf101_main(args) == 1
    captured = capsys.readouterr()
    assert "2 listed but missing on disk" in captured.out
    assert "error: 2 videos listed" in captured.err and "trainlist01.txt:3" in captured.err
    assert not (tmp_path / "json" / "ucf101_01.json").exists()
    assert ucf101_main(args + ["--allow_missing"]) == 0
    data = json.loads((tmp_path / "json" / "ucf101_01.json").read_text())
    assert len(data["database"]) == 3


@pytest.mark.parametrize("line, problem", [("Run/v_Run_g09_c01.avi", "expected"),
                                           ("Walk/v_Walk_g09_c01.avi 1", "not in classInd"),
                                           ("Run/v_Run_g09_c01.avi 2", "does not match")])
def test_malformed_split_line_reports_file_and_line(tmp_path, capsys, line, problem):
    _ucf_labels(tmp_path / "labels")
    with open(tmp_path / "labels" / "trainlist01.txt", "a") as f:
        f.write(line + "\n")
    (tmp_path / "jpg").mkdir()
    assert ucf101_main(["--dir_path", str(tmp_path / "labels"), "--video_path", str(tmp_path / "jpg"),
                        "--dst_dir_path", str(tmp_path / "json")]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # after what the tool detected (the input format)
    assert last.startswith("error: ") and err.count("error: ") == 1 and "trainlist01.txt:4:" in last and problem in last


def test_class_index_errors(tmp_path):
    (tmp_path / "classInd.txt").write_text("1 Run\nJump\n")
    with pytest.raises(UserError, match=r"classInd.txt:2:"):
        read_class_index(tmp_path / "classInd.txt")
    with pytest.raises(UserError, match="no split files"):
        (tmp_path / "classInd.txt").write_text("1 Run\n")
        (tmp_path / "jpg").mkdir()
        generate("ucf101", tmp_path, tmp_path / "jpg", tmp_path / "json")


def test_hmdb51_names_with_dots_brackets_and_unused(tmp_path, capsys):
    labels, jpg = tmp_path / "labels", tmp_path / "jpg"
    labels.mkdir()
    names = ["A_Fistful_of_Dollars_(1964)_draw.gun_f_nm_np1_ri_med_0", "#20_Rhythm_&_Blues!_[x]_0",
             "Pirates.of.the.Caribbean_draw_sword_h_cm_np1_fr_bad_2"]
    (labels / "draw_sword_test_split1.txt").write_text(
        f"{names[0]}.avi 1 \n{names[1]}.avi 2\n{names[2]}.avi 0\n")
    (labels / "clap_test_split1.txt").write_text("clap_1.avi 1\nclap_2.avi 2\n")
    (labels / "clap_test_split2.txt").write_text("clap_1.avi 2\nclap_2.avi 1\n")
    (labels / "draw_sword_test_split2.txt").write_text(f"{names[0]}.avi 2\n")
    for name in names:
        write_frames(jpg / "draw_sword" / name, 2, 8, 8)
    for name in ("clap_1", "clap_2"):
        write_frames(jpg / "clap" / name, 4, 8, 8)
    assert hmdb51_main(["--dir_path", str(labels), "--video_path", str(jpg), "--dst_dir_path", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "hmdb51_1.json: 2 classes, 2 training, 2 validation, 0 listed but missing on disk" in out
    assert "hmdb51_2.json: 2 classes, 1 training, 2 validation" in out
    data = json.loads((tmp_path / "hmdb51_1.json").read_text())
    assert data["labels"] == ["clap", "draw_sword"]
    assert data["database"][names[1]]["annotations"] == {"label": "draw_sword", "segment": [1, 3]}
    assert names[2] not in data["database"]


def test_ucf101_json_from_a_folder_of_videos(tmp_path, capsys, caplog):
    caplog.set_level("INFO", logger="resnet3d")
    """Video files in place of frame folders: counts are the frames that decode, not the container's."""
    import shutil

    from src.data.synthetic import moving_frames, write_video

    _ucf_labels(tmp_path / "labels")
    videos = tmp_path / "videos"
    write_video(videos / "Run" / "v_Run_g01_c01.avi", moving_frames(7, 16, 16), "MJPG")
    write_video(videos / "Run" / "v_Run_g02_c01.mp4", moving_frames(9, 16, 16), "mp4v")
    write_video(videos / "Run" / "v_Run_g03_c01.avi", moving_frames(5, 16, 16), "XVID")
    write_video(videos / "Jump" / "v_Jump_g01_c01.mkv", moving_frames(6, 16, 16), "MJPG")
    packed = TEST_DATA / "xvid_bframes_gop40.avi"  # declares 90, 88 decode
    shutil.copy(packed, videos / "Jump" / "v_Jump_g02_c01.avi")
    write_video(videos / "Jump" / "v_Jump_g99_c01.avi", moving_frames(3, 16, 16), "MJPG")  # in no split
    assert ucf101_main(["--dir_path", str(tmp_path / "labels"), "--video_path", str(videos),
                        "--dst_dir_path", str(tmp_path / "json"), "--n_jobs", "2"]) == 0
    out, err = capsys.readouterr()
    assert "input_format: video (detected:" in caplog.text
    assert "ucf101_01.json: 2 classes, 3 training, 2 validation, 0 listed but missing on disk" in out
    assert "1 videos on disk are in no split" in out and "Jump/v_Jump_g99_c01" in out
    assert "1 videos decode to another frame count than their container declares" in err
    assert "Jump/v_Jump_g02_c01: 88 decode, 90 declared" in err
    database = json.loads((tmp_path / "json" / "ucf101_01.json").read_text())["database"]
    segments = {vid: v["annotations"]["segment"] for vid, v in database.items()}
    assert segments == {"v_Run_g01_c01": [1, 8], "v_Run_g02_c01": [1, 10], "v_Run_g03_c01": [1, 6],
                        "v_Jump_g01_c01": [1, 7], "v_Jump_g02_c01": [1, 89]}


def test_hmdb51_json_from_videos_with_odd_names(tmp_path, capsys):
    """HMDB51's file names (dots, brackets, &, #, !) as video files: the id is the stem."""
    from src.data.synthetic import moving_frames, write_video

    labels, videos = tmp_path / "labels", tmp_path / "videos"
    labels.mkdir()
    names = ["A_Fistful_of_Dollars_(1964)_draw.gun_f_nm_np1_ri_med_0", "#20_Rhythm_&_Blues!_[x]_0"]
    (labels / "draw_sword_test_split1.txt").write_text(f"{names[0]}.avi 1\n{names[1]}.avi 2\n")
    for i, name in enumerate(names):
        write_video(videos / "draw_sword" / f"{name}.avi", moving_frames(4 + i, 16, 16), "XVID")
    assert hmdb51_main(["--dir_path", str(labels), "--video_path", str(videos), "--dst_dir_path", str(tmp_path),
                        "--n_jobs", "1"]) == 0
    assert "hmdb51_1.json: 1 classes, 1 training, 1 validation" in capsys.readouterr().out
    data = json.loads((tmp_path / "hmdb51_1.json").read_text())["database"]
    assert {k: v["annotations"]["segment"] for k, v in data.items()} == {names[0]: [1, 5], names[1]: [1, 6]}
