"""The dataset folder layout (UCF101 / HMDB51): ``<video_path>/<class>/<video>/`` frame folders or
``<video_path>/<class>/<video>.<ext>`` video files, which of the two a dataset uses, where one video is,
and ``open_source``: the one place that turns such a path into a frame source (FrameFolder / VideoFile)."""
import logging
import os
import threading
from pathlib import Path

from src.data.frames import VIDEO_SUFFIXES, FrameFolder, count_frames
from src.data.video import VideoFile, count_decodable_frames
from src.errors import UserError

log = logging.getLogger("resnet3d")

INPUT_FORMATS = ("auto", "frames", "video")
_CACHE_SIZE = 2  # open captures kept per thread: consecutive evaluation windows continue decoding

_local = threading.local()


def open_source(path, n_frames: int | None = None):
    """A frame folder -> FrameFolder; a video file -> VideoFile (the last few kept open per thread
    and process, so consecutive windows of one video continue decoding instead of seeking)."""
    path = Path(path)
    if path.is_dir():
        return FrameFolder(path, n_frames)
    cache = getattr(_local, "cache", None)
    if cache is None or _local.pid != os.getpid():  # a forked worker must not share the parent's files
        cache, _local.cache, _local.pid = {}, {}, os.getpid()
        cache = _local.cache
    key = (str(path), n_frames)
    source = cache.pop(key, None)
    if source is None:
        source = VideoFile(path, n_frames)
        while len(cache) >= _CACHE_SIZE:
            cache.pop(next(iter(cache))).close()
    cache[key] = source  # most recently used last
    return source


def is_video_file(path) -> bool:
    path = Path(path)
    return path.suffix.lower() in VIDEO_SUFFIXES and not path.name.startswith(".")


def detect_input_format(video_path, input_format: str = "auto") -> str:
    """'frames' or 'video' for ``video_path`` (``<class>/<video>/`` folders or ``<class>/<video>.avi``)."""
    if input_format not in INPUT_FORMATS:
        raise UserError(f"--input_format {input_format} is unknown: use one of {', '.join(INPUT_FORMATS)}")
    if input_format != "auto":
        return input_format
    root = Path(video_path)
    if root.is_dir():
        for class_dir in sorted(root.iterdir()):
            if not class_dir.is_dir() or class_dir.name.startswith("."):
                continue
            for item in class_dir.iterdir():
                if item.name.startswith("."):
                    continue
                if item.is_dir():
                    return "frames"
                if item.is_file() and is_video_file(item):
                    return "video"
    return "frames"


_announced = set()


def announce_input_format(video_path, input_format: str = "auto") -> str:
    """detect_input_format, printing the detected format once per process and path."""
    found = detect_input_format(video_path, input_format)
    if input_format == "auto" and str(video_path) not in _announced:
        _announced.add(str(video_path))
        kind = "video files <class>/<video>.<ext>" if found == "video" else "frame folders <class>/<video>/"
        log.info("input_format: %s (detected: %s holds %s)", found, video_path, kind)
    return found


class SourceLocator:
    """(class folder, video id) -> the frame folder or video file under ``video_path``, or None."""

    def __init__(self, video_path, input_format: str = "auto", announce: bool = True):
        self.root = Path(video_path)
        self.format = (announce_input_format if announce else detect_input_format)(video_path, input_format)
        self._videos = {}

    def __call__(self, label: str, video_id: str) -> Path | None:
        if self.format == "frames":
            folder = self.root / label / video_id
            return folder if folder.is_dir() else None
        if label not in self._videos:
            class_dir = self.root / label
            found = {}
            if class_dir.is_dir():
                for item in sorted(class_dir.iterdir()):
                    if item.is_file() and is_video_file(item):
                        found.setdefault(item.stem, item)
            self._videos[label] = found
        return self._videos[label].get(video_id)

    def on_disk(self) -> set:
        """{(class, video id)} of every frame folder or video file under the root."""
        found = set()
        for class_dir in self.root.iterdir():
            if not class_dir.is_dir() or class_dir.name.startswith("."):
                continue
            for item in class_dir.iterdir():
                if item.name.startswith("."):
                    continue
                if self.format == "frames" and item.is_dir():
                    found.add((class_dir.name, item.name))
                elif self.format == "video" and item.is_file() and is_video_file(item):
                    found.add((class_dir.name, item.stem))
        return found

    def count(self, path: Path) -> int:
        """Frames of one located entry (on disk, or decodable)."""
        return count_frames(path) if self.format == "frames" else count_decodable_frames(path)


def open_video(path):
    """A frame folder or a video file the user names (predict.py), checked, then opened by open_source;
    a UserError says why it cannot be used."""
    path = Path(path)
    if path.is_dir():
        if count_frames(path) == 0:
            raise UserError(f"{path} holds no image_*.jpg frames: extract frames with generate_video_jpgs.py")
    elif not path.is_file():
        raise UserError(f"{path} does not exist: pass a video file ({', '.join(VIDEO_SUFFIXES)}) or a frame folder")
    return open_source(path)
