"""src.data.video: frame-exact bounded decoding, errors, source selection.

tests/data holds two videos OpenCV cannot write (its FFmpeg has no H.264 encoder and ignores the
key-frame interval): 90 frames of 96x64 ``moving_frames(90, 64, 96, seed=3)`` piped as raw BGR into
``ffmpeg -c:v libx264 -g 40 -bf 3 -pix_fmt yuv420p`` (h264_gop40.mp4) and
``ffmpeg -c:v libxvid -g 40 -bf 2`` (xvid_bframes_gop40.avi: packed B-frames, as UCF101's AVIs).
"""
from functools import partial

import cv2
import numpy as np
import pytest

from src.data import spatial
from src.data.frames import FrameFolder
from src.data.layout import detect_input_format, open_source, open_video
from src.data.synthetic import moving_frames, write_video
from src.data.video import VideoFile, container_frame_count, count_decodable_frames
from src.errors import UserError
from tests.helpers.scripts import TEST_DATA

DATA = TEST_DATA


def sequential(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


@pytest.fixture(scope="module")
def codec_videos(tmp_path_factory):
    """MJPG, XVID and mp4v written here by OpenCV (key frame every 12 frames) plus the ffmpeg-made files."""
    root = tmp_path_factory.mktemp("videos")
    made = {fourcc: write_video(root / f"v_{fourcc}.{ext}", moving_frames(70, 48, 64, seed=1), fourcc)
            for fourcc, ext in (("MJPG", "avi"), ("XVID", "avi"), ("mp4v", "mp4"))}
    made["H264"] = DATA / "h264_gop40.mp4"
    made["XVID-B"] = DATA / "xvid_bframes_gop40.avi"
    return made


@pytest.mark.parametrize("codec", ["MJPG", "XVID", "mp4v", "H264", "XVID-B"])
def test_clips_equal_sequential_decode_bit_for_bit(codec_videos, codec):
    path = codec_videos[codec]
    reference = sequential(path)
    assert len(reference) == count_decodable_frames(path) >= 69
    source = VideoFile(path, len(reference))
    n = len(reference)
    rng = np.random.default_rng(0)
    # forward, backward and far jumps (past key frames), loop-padded clips, the last frames
    starts = [1, n - 7, 30, 2, 45, 44, 60, 12] + [int(s) for s in rng.integers(1, n - 7, 12)]
    for start in starts:
        numbers = [start + i for i in range(8)]
        if start == 44:
            numbers = numbers[:3] * 3  # a short video's looped clip repeats frames
        frames, factor = source.read(numbers)
        assert factor == 1
        for number, frame in zip(numbers, frames):
            assert frame.dtype == np.uint8 and np.array_equal(frame, reference[number - 1]), (codec, number)
    # a fresh source (a dataset worker's first read) seeks straight to a late key frame's neighbour
    frames, _ = VideoFile(path, n).read([n - 1, n])
    assert np.array_equal(frames[1], reference[n - 1])


def test_reduce_area_averages_like_the_jpeg_path(codec_videos):
    path = codec_videos["MJPG"]
    full, _ = VideoFile(path, 70).read([5])
    half, factor = VideoFile(path, 70).read([5], reduce=2)
    assert factor == 2 and half[0].shape == (24, 32, 3)
    assert np.array_equal(half[0], cv2.resize(full[0], (32, 24), interpolation=cv2.INTER_AREA))


def test_video_clip_matches_frame_folder_clip(codec_videos, tmp_path):
    """The same frames as a JPEG folder (quality 100) and as a video give nearly the same crop."""
    path = codec_videos["XVID"]
    reference = sequential(path)
    for t, frame in enumerate(reference, 1):
        cv2.imwrite(str(tmp_path / f"image_{t:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 100])
    box = partial(spatial.center_box, size=16)
    numbers = list(range(20, 28))
    from_video = spatial.load_clip(VideoFile(path, len(reference)), numbers, box, 16).astype(np.int16)
    from_jpegs = spatial.load_clip(FrameFolder(tmp_path, len(reference)), numbers, box, 16).astype(np.int16)
    assert np.abs(from_video - from_jpegs).mean() < 1.5


def test_truncated_video_is_one_user_error(codec_videos, tmp_path):
    path = codec_videos["XVID"]
    data = path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 2 // 3])
    decodable = count_decodable_frames(cut)
    assert 0 < decodable < 70 <= container_frame_count(cut)
    source = VideoFile(cut, 70)  # the annotation still says 70
    with pytest.raises(UserError, match=f"{cut.name} decodes only {decodable} frames but the annotation says 70"):
        source.read(list(range(60, 68)))
    with pytest.raises(UserError, match="decodes only"):
        VideoFile(cut, 70).read(list(range(decodable - 2, decodable + 3)))
    with pytest.raises(UserError, match="frames 70..71 asked, it has 70"):
        VideoFile(path, 70).read([70, 71])


def test_unopenable_and_missing_videos(tmp_path):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"RIFF" + bytes(range(256)) * 4)
    with pytest.raises(UserError, match="bad.avi cannot be opened"):
        VideoFile(bad, 10).read([1])
    with pytest.raises(UserError, match="bad.avi cannot be opened"):
        count_decodable_frames(bad)
    with pytest.raises(UserError, match="does not exist"):
        VideoFile(tmp_path / "none.mp4", 3).read([1])


def test_open_source_and_open_video(codec_videos, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "image_00001.jpg"), np.zeros((8, 8, 3), np.uint8))
    assert isinstance(open_source(folder, 1), FrameFolder)
    first = open_source(codec_videos["MJPG"], 70)
    assert isinstance(first, VideoFile) and open_source(codec_videos["MJPG"], 70) is first  # kept open per thread
    source = open_video(codec_videos["mp4v"])  # predict: counts the frames, no whole-video decode in memory
    assert isinstance(source, VideoFile) and len(source) == 70 and source.frame_size() == (48, 64)


def test_detect_input_format(codec_videos, tmp_path):
    (tmp_path / "frames" / "A" / "v1").mkdir(parents=True)
    (tmp_path / "videos" / "A").mkdir(parents=True)
    write_video(tmp_path / "videos" / "A" / "v1.avi", moving_frames(3, 16, 16))
    assert detect_input_format(tmp_path / "frames") == "frames"
    assert detect_input_format(tmp_path / "videos") == "video"
    assert detect_input_format(tmp_path / "videos", "frames") == "frames"
    with pytest.raises(UserError, match="--input_format"):
        detect_input_format(tmp_path, "mp4")


@pytest.fixture(autouse=True)
def _index_cache(tmp_path, monkeypatch):
    from src.data import video

    monkeypatch.setenv("RESNET3D_VIDEO_INDEX", str(tmp_path / "index"))
    video._tables.clear()


def test_packed_b_frame_avi_needs_the_timestamp_table(codec_videos, tmp_path):
    """OpenCV's own frame numbering is off by one in this file; the table path reads the right frame,
    and a wrong (here: tampered) cached table is caught by the timestamp check."""
    path = codec_videos["XVID-B"]
    reference = sequential(path)
    assert container_frame_count(path) != len(reference)
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 60)
    assert not np.array_equal(cap.read()[1], reference[60])
    assert np.array_equal(VideoFile(path, len(reference)).read([61])[0][0], reference[60])
    (table,) = list((tmp_path / "index").glob("*.npy"))
    np.save(table, np.load(table) + 1.0)
    from src.data import video

    video._tables.clear()
    assert np.array_equal(VideoFile(path, len(reference)).read([61])[0][0], reference[60])
