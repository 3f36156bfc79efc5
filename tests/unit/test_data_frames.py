import numpy as np
import pytest

from src.data.frames import FrameFolder, count_frames, jpeg_size
from src.data.layout import open_video
from src.data.presets import ClipSpec, eval_clip, eval_windows
from src.errors import UserError
from tests.helpers.media import write_frames, write_noise_video
from tests.helpers.tiny import tiny_data_config


def test_missing_frame_raises_user_error_naming_the_file(tmp_path):
    folder = write_frames(tmp_path / "odd name [1]", 4)
    (folder / "image_00003.jpg").unlink()
    with pytest.raises(UserError, match=r"image_00003\.jpg"):
        FrameFolder(folder, 4).read([1, 2, 3, 4])


def test_corrupt_frame_raises_user_error(tmp_path):
    folder = write_frames(tmp_path / "v", 2)
    (folder / "image_00002.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UserError, match=r"image_00002\.jpg"):
        FrameFolder(folder).read([2])


def test_jpeg_header_size_and_frame_count(tmp_path):
    folder = write_frames(tmp_path / "v", 3, 48, 64)
    assert jpeg_size((folder / "image_00001.jpg").read_bytes()) == (48, 64)
    assert count_frames(folder) == 3 and count_frames(tmp_path / "nope") == 0


def test_open_video_accepts_folder_and_video_file(tmp_path):
    cfg = tiny_data_config()
    spec = ClipSpec.of(cfg.data, cfg.evaluation)
    video = open_video(write_noise_video(tmp_path / "clip é.avi", n_frames=6))
    folder = open_video(write_frames(tmp_path / "frames", 6))
    for source in (video, folder):
        windows = eval_windows(len(source), spec)
        assert len(source) == 6 and len(windows) == 2 and all(len(w) == 4 for w in windows)
        clip = eval_clip(source, windows[-1], spec)
        assert clip.shape == (3, 4, 32, 32) and clip.dtype == np.float32


def test_open_video_unreadable_input(tmp_path):
    bad = tmp_path / "broken.avi"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(UserError, match="broken.avi"):
        open_video(bad)
    with pytest.raises(UserError, match="does not exist"):
        open_video(tmp_path / "missing.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no image_"):
        open_video(tmp_path / "empty")
