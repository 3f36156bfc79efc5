"""TensorBoard event files, written without TensorBoard: ``tensorboard --logdir <result_path>`` shows a run's
loss, learning rate, data wait and validation accuracy.

The format is TensorBoard's: TFRecord framing (length, masked CRC-32C of the length, the record, masked CRC-32C
of the record) around ``Event`` protocol buffers (wall_time = 1, step = 2, file_version = 3, summary = 5; a
Summary holds repeated Value {tag = 1, simple_value = 2}), encoded here by hand: a few scalars need no protobuf
classes. Each event is flushed as written, so a killed run loses at most the event being written; a resumed run
opens a new file, and TensorBoard merges the files of a folder by step.
"""
import os
import socket
import struct
import time
from pathlib import Path


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as TFRecord uses."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record(data: bytes) -> bytes:
    """One TFRecord around ``data``."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", _masked(crc32c(length))) + data + struct.pack("<I", _masked(crc32c(data)))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return _varint(number << 3 | wire) + payload


def _bytes_field(number: int, data: bytes) -> bytes:
    return _field(number, 2, _varint(len(data)) + data)


def event(wall_time: float, step: int = 0, file_version: str | None = None, scalars: dict | None = None) -> bytes:
    """An Event message: the file's version line, or one step's scalars (tag -> value)."""
    body = _field(1, 1, struct.pack("<d", wall_time)) + _field(2, 0, _varint(step))
    if file_version is not None:
        body += _bytes_field(3, file_version.encode())
    if scalars:
        values = b"".join(_bytes_field(1, _bytes_field(1, tag.encode()) + _field(2, 5, struct.pack("<f", value)))
                          for tag, value in scalars.items())
        body += _bytes_field(5, values)
    return body


class EventWriter:
    """Appends scalar events to a new ``events.out.tfevents.<time>.<host>.<pid>`` file in ``folder``. A write
    that fails (a full disk) stops the writer for the run with one warning: curves are not worth a run."""

    def __init__(self, folder, warn=None):
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self.path = Path(folder) / name
        self._warn = warn
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            self._fd = os.open(self.path, flags, 0o644)
        except OSError as err:
            self._fail(err)
            return
        self._write(event(time.time(), file_version="brain.Event:2"))

    def scalars(self, step: int, values: dict) -> None:
        """Record ``values`` (tag -> number) at global step ``step``."""
        if self._fd is not None and values:
            self._write(event(time.time(), step, scalars={k: float(v) for k, v in values.items()}))

    def _write(self, data: bytes) -> None:
        try:
            os.write(self._fd, record(data))
        except OSError as err:
            self.close()
            self._fail(err)

    def _fail(self, err):
        self._fd = None
        if self._warn:
            self._warn(f"TensorBoard events not written to {self.path} ({err.strerror or err}): the run goes on")

    def close(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None
