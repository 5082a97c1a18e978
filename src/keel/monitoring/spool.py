"""The append-only local spool: framed, checksummed records, written before they count.

A frame is ``<u32 length><u32 crc32>`` (little-endian) followed by ``length`` bytes of
orjson payload: one record (an object), or the records of one append (an array), so an
append costs one encoding, one checksum and one ``write`` however many records it carries.
A record is acknowledged only after its frame is written (and fsync'd, with ``sync``), so
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
    "encode_batch",
    "encode_frame",
    "read_spool",
    "try_lock",
]

_HEADER = struct.Struct("<II")
_MAX_FRAME = 64 << 20  # a longer length field can only be garbage


def encode_frame(record: Any) -> bytes:
    """One frame: length, crc32 of the payload, orjson payload (a record or a list of them)."""
    payload = orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY)
    if len(payload) > _MAX_FRAME:
        raise ValueError(f"a spool frame holds at most {_MAX_FRAME} bytes, not {len(payload)}")
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def encode_batch(records: list[Any]) -> bytes:
    """The records as one frame, split in halves while a frame would be too long to read."""
    try:
        return encode_frame(records)
    except ValueError:
        if len(records) < 2:
            raise
    half = len(records) // 2
    return encode_batch(records[:half]) + encode_batch(records[half:])


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
        try:
            payload = orjson.loads(data[start:end])
        except orjson.JSONDecodeError:
            break  # a checksum that matches garbage: not a frame this module wrote
        if isinstance(payload, list):
            records.extend(payload)
        else:
            records.append(payload)
        offset = end
    return SpoolContents(records=records, dropped_bytes=len(data) - offset)


def read_spool(path: Path) -> SpoolContents:
    """The intact records of one spool file."""
    return decode_frames(path.read_bytes())


class SpoolWriter:
    """Appends frames to one spool file and fsyncs them; holds an exclusive lock on it.

    The lock tells a flusher in any process that this file is still being written: only
    unlocked spool files (sealed, or left behind by a dead process) are rolled. A new
    file is created and locked under a hidden name and then renamed, so no flusher can
    lock it first (which would refuse the writer its own file).
    """

    def __init__(self, path: Path, *, sync: bool = True) -> None:
        self.path = path
        self._sync = sync
        self._mutex = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # locked under a name no flusher looks at, then renamed: never seen unlocked
            hidden = path.with_name(f".{path.name}.new")
            self._fd = os.open(hidden, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(hidden, path)
        self._size = os.fstat(self._fd).st_size
        if sync:  # the new file's name must survive a power cut as much as its frames
            folder = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        self.count = 0

    def append(self, records: Iterable[Any]) -> None:
        """Write the records as one frame in one ``write`` (fsync'd too, with ``sync``).

        A failed write is cut off the file, so no torn frame hides later appends from
        the reader.
        """
        batch = list(records)
        frame = encode_batch(batch)
        with self._mutex:
            try:
                _write_all(self._fd, frame)
                if self._sync:
                    os.fdatasync(self._fd)
            except OSError:
                os.ftruncate(self._fd, self._size)
                raise
            self._size += len(frame)
            self.count += len(batch)

    def close(self) -> None:
        with self._mutex:
            if self._fd >= 0:
                os.fsync(self._fd)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = -1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


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
