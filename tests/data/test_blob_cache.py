"""The blob cache behind ``readable``: a blob read once is read again from disk, and an
entry that is not exactly what was verified (tampered with, truncated, half-written by a
killed worker) is never used. The store is a real artifact folder; deleting a blob from
it after the first read shows the second read did not fetch it."""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from keel.data.remote import CACHE_BYTES_ENV, CACHE_ENV, STALE_SECONDS, Blob, readable
from keel.errors import ArtifactNotFound, ComputeError
from keel.store.artifacts import ArtifactStore


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    monkeypatch.delenv(CACHE_BYTES_ENV, raising=False)
    return folder


def _blob(store: ArtifactStore, data: bytes) -> Blob:
    return Blob(store.location, {}, store.put_bytes(data))


def _read(blob: Blob) -> bytes:
    with readable(blob) as path:
        return Path(path).read_bytes()


def _forget(store: ArtifactStore, blob: Blob) -> None:
    """Delete the blob from the store: a read that still works came from the cache."""
    os.unlink(store.url(blob.digest))


def _entries(cache: Path) -> list[Path]:
    return [p for p in cache.iterdir() if not p.name.startswith(".")]


def test_a_blob_read_once_is_read_again_without_the_store(
    store: ArtifactStore, cache: Path
) -> None:
    """The second read of a blob gives the same bytes after the store lost it."""
    data = os.urandom(50_000)
    blob = _blob(store, data)
    assert _read(blob) == data
    _forget(store, blob)
    assert _read(blob) == data
    assert [p.name.split(".")[0] for p in _entries(cache)] == [hashlib.sha256(data).hexdigest()]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[:-1] + bytes([b[-1] ^ 1]), id="one-byte-changed"),
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b + b"x", id="appended"),
    ],
)
def test_a_tampered_entry_is_never_used(store: ArtifactStore, cache: Path, damage) -> None:  # type: ignore[no-untyped-def]
    """An entry changed on disk after it was verified is deleted and the blob fetched
    again: the read gives the stored bytes, or fails when the store no longer has them."""
    data = os.urandom(50_000)
    blob = _blob(store, data)
    _read(blob)
    (entry,) = _entries(cache)
    time.sleep(0.01)  # a write a tick later (file times are not always nanosecond-fine)
    entry.write_bytes(damage(entry.read_bytes()))
    assert _read(blob) == data
    (entry,) = _entries(cache)
    entry.write_bytes(damage(entry.read_bytes()))
    _forget(store, blob)
    with pytest.raises(ArtifactNotFound):
        _read(blob)
    assert _entries(cache) == []


def test_a_half_written_download_is_never_read_and_is_removed_once_stale(
    store: ArtifactStore, cache: Path
) -> None:
    """A temporary file left by a worker killed mid-download (the blob's first half) is
    not taken for the blob; the next entry added removes it once it is an hour old."""
    data = os.urandom(50_000)
    blob = _blob(store, data)
    cache.mkdir()
    left = cache / f".{blob.digest}.0123456789abcdef.part"
    left.write_bytes(data[:25_000])
    assert _read(blob) == data
    assert left.exists()
    old = time.time() - STALE_SECONDS - 10
    os.utime(left, (old, old))
    _read(_blob(store, b"another blob"))
    assert not left.exists()


def test_the_least_recently_read_blobs_go_first_beyond_the_bound(
    store: ArtifactStore, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for two 10 kB blobs, reading a third evicts the one read longest ago."""
    monkeypatch.setenv(CACHE_BYTES_ENV, "25000")
    blobs = [_blob(store, os.urandom(10_000)) for _ in range(3)]
    _read(blobs[0])
    _read(blobs[1])
    _read(blobs[0])  # now blobs[1] is the least recently read
    _read(blobs[2])
    kept = {p.name.split(".")[0] for p in _entries(cache)}
    assert kept == {blobs[0].digest, blobs[2].digest}


def test_concurrent_reads_of_one_blob_all_get_its_bytes(store: ArtifactStore, cache: Path) -> None:
    """Eight threads reading the same uncached blob at once each get the whole blob; one
    entry is left once it is read again (twins added at the same instant go then)."""
    data = os.urandom(2_000_000)
    blob = _blob(store, data)
    with ThreadPoolExecutor(8) as pool:
        assert all(read == data for read in pool.map(lambda _: _read(blob), range(8)))
    assert _read(blob) == data
    assert len(_entries(cache)) == 1


def test_a_bound_of_zero_turns_the_cache_off(
    store: ArtifactStore, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_BYTES_ENV, "0")
    blob = _blob(store, b"rows")
    assert _read(blob) == b"rows"
    assert not cache.exists()


def test_a_bound_that_is_not_a_number_is_one_sentence(
    store: ArtifactStore, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_BYTES_ENV, "4 GB")
    with pytest.raises(ComputeError, match=r"^\$KEEL_BLOB_CACHE_BYTES is '4 GB'; set it"):
        _read(_blob(store, b"rows"))
