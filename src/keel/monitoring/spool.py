"""The append-only local spool: framed, checksummed records, fsync'd before they count.

A frame is ``<u32 length><u32 crc32>`` (little-endian) followed by ``length`` bytes of
orjson payload. A record is acknowledged only after its frame is written and fsync'd, so
a process killed at any moment loses nothing it acknowledged. A crash mid-write leaves at
most one torn frame at the end of the file; the reader stops at the first frame whose
length runs past the end or whose checksum does not match, keeps everything before it,
and reports how many bytes it dropped.
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

__all__ = [
    "SpoolContents",
    "SpoolWriter",
    "decode_frames",
    "encode_frame",
    "read_spool",
    "try_lock",
]

_HEADER = struct.Struct("<II")
_MAX_FRAME = 64 << 20  # a longer length field can only be garbage


def encode_frame(record: Any) -> bytes:
    """One record as a frame: length, crc32 of the payload, orjson payload."""
    payload = orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY)
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


@dataclass(frozen=True)
class SpoolContents:
    """What a spool file held: the intact records, and the bytes of a torn tail."""

    records: list[dict[str, Any]]
    dropped_bytes: int


def decode_frames(data: bytes) -> SpoolContents:
    """Every intact frame up to the first torn or corrupt one."""
    records: list[dict[str, Any]] = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, offset)
        start, end = offset + _HEADER.size, offset + _HEADER.size + length
        if length > _MAX_FRAME or end > len(data) or zlib.crc32(data[start:end]) != crc:
            break
        records.append(orjson.loads(data[start:end]))
        offset = end
    return SpoolContents(records=records, dropped_bytes=len(data) - offset)


def read_spool(path: Path) -> SpoolContents:
    """The intact records of one spool file."""
    return decode_frames(path.read_bytes())


class SpoolWriter:
    """Appends frames to one spool file and fsyncs them; holds an exclusive lock on it.

    The lock tells a flusher in any process that this file is still being written: only
    unlocked spool files (sealed, or left behind by a dead process) are rolled.
    """

    def __init__(self, path: Path, *, sync: bool = True) -> None:
        self.path = path
        self._sync = sync
        self._mutex = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = open(path, "ab")  # noqa: SIM115 - held until close()
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        if sync:  # the new file's name must survive a power cut as much as its frames
            folder = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        self.count = 0

    def append(self, records: Iterable[Any]) -> None:
        """Write the records' frames in one write and make them durable before returning."""
        frames = [encode_frame(record) for record in records]
        data = b"".join(frames)
        with self._mutex:
            self._file.write(data)
            self._file.flush()
            if self._sync:
                os.fdatasync(self._file.fileno())
            self.count += len(frames)

    def close(self) -> None:
        with self._mutex:
            if not self._file.closed:
                self._file.flush()
                os.fsync(self._file.fileno())
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
                self._file.close()


def try_lock(path: Path) -> BinaryIO | None:
    """An open handle holding the file's exclusive lock, or None if someone holds it."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - returned to the caller
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle
