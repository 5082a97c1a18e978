"""The spool: framed, checksummed records; a torn tail is dropped and the rest kept."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from keel.monitoring.spool import (
    SpoolWriter,
    decode_frames,
    encode_batch,
    encode_frame,
    read_spool,
    try_lock,
)


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


def test_an_append_is_one_frame_and_single_record_frames_still_read(tmp_path: Path) -> None:
    """A batch is written as one frame of its records; files holding one-record frames
    (as earlier versions wrote them) read back in order beside it."""
    path = tmp_path / "s.log"
    path.write_bytes(encode_frame({"i": 0}))
    writer = SpoolWriter(path)
    writer.append([{"i": 1}, {"i": 2}, {"i": 3}])
    writer.close()
    data = path.read_bytes()
    assert data == encode_frame({"i": 0}) + encode_batch([{"i": 1}, {"i": 2}, {"i": 3}])
    assert [r["i"] for r in read_spool(path).records] == [0, 1, 2, 3]


WRITE_PAST_LIMIT = textwrap.dedent(
    """
    import resource, signal, sys
    from pathlib import Path
    from keel.monitoring.spool import SpoolWriter

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
    writer = SpoolWriter(Path(sys.argv[1]), sync=False)
    writer.append([{"i": 0}])
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, hard))
    try:
        writer.append([{"i": 1, "pad": "x" * 200}])
    except OSError:
        print("failed")
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    writer.append([{"i": 2}])
    writer.close()
    """
)


def test_a_failed_write_does_not_hide_later_appends(tmp_path: Path) -> None:
    """A write cut short (here by a file size limit) is taken back off the file, so the
    reader finds the appends after it instead of stopping at a torn frame."""
    path = tmp_path / "s.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", WRITE_PAST_LIMIT, str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "failed"
    contents = read_spool(path)
    assert [r["i"] for r in contents.records] == [0, 2]
    assert contents.dropped_bytes == 0


def test_a_new_spool_file_is_locked_before_a_flusher_can_see_it(tmp_path: Path) -> None:
    """A flusher (or shipper) that tries to lock the next spool file's name over and over
    while a writer opens 1,000 new spool files: no writer is refused its own file's lock,
    so no append fails for a flusher that looked at the wrong moment."""
    import threading

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns as often as they can
    stop = threading.Event()
    target = [tmp_path / "0000.log"]

    def flusher() -> None:
        while not stop.is_set():
            handle = try_lock(target[0])
            if handle is not None:
                handle.close()

    thread = threading.Thread(target=flusher)
    thread.start()
    refused = 0
    try:
        for serial in range(1000):
            target[0] = tmp_path / f"{serial:04d}.log"
            try:
                SpoolWriter(target[0], sync=False).close()
            except BlockingIOError:
                refused += 1
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(previous)
    assert refused == 0
