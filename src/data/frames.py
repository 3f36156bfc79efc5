"""Reading frames from a folder of extracted JPEGs (src.data.video reads video files).

Both sources give BGR uint8 frames (OpenCV order; the RGB swap happens in the single vectorised
normalisation step) and report the factor by which they were shrunk while decoding.
"""
import os
from pathlib import Path

import cv2
import numpy as np

from src.errors import UserError

VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".m4v")
# JPEG DCT scaling: decoding at 1/2, 1/4, 1/8 size is much cheaper than decoding then resizing.
_REDUCED_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
                  4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def frame_name(number):
    """Upstream frame file name: 1-based, 5 digits."""
    return f"image_{number:05d}.jpg"


def count_frames(folder):
    """Number of ``image_*.jpg`` files in ``folder`` (0 if it does not exist)."""
    try:
        with os.scandir(folder) as it:
            return sum(1 for e in it if e.name.startswith("image_") and e.name.endswith(".jpg"))
    except (FileNotFoundError, NotADirectoryError):
        return 0


def jpeg_size(data):
    """(height, width) from a JPEG's SOF header without decoding, or None if not found."""
    i, n = 2, len(data)
    while i + 9 < n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        length = (data[i + 2] << 8) | data[i + 3]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return (data[i + 5] << 8) | data[i + 6], (data[i + 7] << 8) | data[i + 8]
        i += 2 + length
    return None


def read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise UserError(f"frame {path} is missing: re-extract this video (generate_video_jpgs.py) "
                        f"or run check_dataset.py") from None
    except OSError as err:
        raise UserError(f"frame {path} cannot be read ({err.strerror}): check the file") from None


def decode_jpeg(data, path, reduce=1):
    if not data:  # OpenCV asserts on an empty buffer instead of returning None
        raise UserError(f"frame {path} is empty (0 bytes): re-extract this video (generate_video_jpgs.py)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), _REDUCED_FLAGS[reduce])
    if image is None:
        raise UserError(f"frame {path} cannot be decoded (corrupt or not a JPEG): re-extract this video")
    return image


class FrameFolder:
    """A video as a folder of ``image_00001.jpg`` ... files."""

    def __init__(self, folder, n_frames=None):
        self.folder = Path(folder)
        self.n_frames = count_frames(self.folder) if n_frames is None else int(n_frames)
        self._size = None

    def __len__(self):
        return self.n_frames

    def path(self, number):
        return self.folder / frame_name(number)

    def frame_size(self, first_number=1):
        """(height, width) of the frames, read from one JPEG header."""
        if self._size is None:
            path = self.path(first_number)
            data = read_bytes(path)
            size = jpeg_size(data)
            self._size = size if size else decode_jpeg(data, path).shape[:2]
        return self._size

    def read(self, numbers, reduce=1):
        """BGR uint8 frames for 1-based ``numbers``, decoded at 1/``reduce`` size; returns (frames, reduce)."""
        cache = {}
        frames = []
        for number in numbers:
            if number not in cache:  # loop-padded clips repeat frames: decode each once
                path = self.path(number)
                cache[number] = decode_jpeg(read_bytes(path), path, reduce)
            frames.append(cache[number])
        return frames, reduce

