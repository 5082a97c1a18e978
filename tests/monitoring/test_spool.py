"""The spool: framed, checksummed records; a torn tail is dropped and the rest kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.monitoring.spool import SpoolWriter, decode_frames, encode_frame, read_spool, try_lock


def test_frames_round_trip() -> None:
    """Records encoded as frames decode to the same records."""
    records = [{"a": 1, "b": "x"}, {"a": None, "nested": {"k": [1, 2]}}]
    contents = decode_frames(b"".join(encode_frame(r) for r in records))
    assert contents.records == records
    assert contents.dropped_bytes == 0


@pytest.mark.parametrize("cut", [1, 4, 8, 9, 15])
def test_torn_last_frame_is_dropped_and_the_rest_kept(cut: int) -> None:
    """A last frame cut short anywhere (header or payload) is dropped; earlier ones stay."""
    good = encode_frame({"id": 1}) + encode_frame({"id": 2})
    torn = encode_frame({"id": 3, "payload": "x" * 20})[:cut]
    contents = decode_frames(good + torn)
    assert [r["id"] for r in contents.records] == [1, 2]
    assert contents.dropped_bytes == cut


def test_corrupt_frame_stops_the_read() -> None:
    """A frame whose checksum does not match ends the readable part of the file."""
    first, second = encode_frame({"id": 1}), bytearray(encode_frame({"id": 2}))
    second[-2] ^= 0xFF
    contents = decode_frames(first + bytes(second))
    assert contents.records == [{"id": 1}]
    assert contents.dropped_bytes == len(second)


def test_writer_appends_durably_and_counts(tmp_path: Path) -> None:
    """Appended batches are on disk, in order, as soon as append returns."""
    writer = SpoolWriter(tmp_path / "s.log")
    writer.append([{"i": 0}, {"i": 1}])
    writer.append([{"i": 2}])
    assert [r["i"] for r in read_spool(tmp_path / "s.log").records] == [0, 1, 2]
    assert writer.count == 3
    writer.close()


def test_a_file_being_written_cannot_be_locked_by_a_flusher(tmp_path: Path) -> None:
    """While a writer holds its spool, try_lock refuses it; after close it is granted."""
    writer = SpoolWriter(tmp_path / "s.log")
    assert try_lock(tmp_path / "s.log") is None
    writer.close()
    handle = try_lock(tmp_path / "s.log")
    assert handle is not None
    handle.close()
