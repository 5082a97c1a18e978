"""The content-addressed artifact store: round trips, corruption, atomic writes."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.errors import ArtifactCorrupt, ArtifactError, ArtifactNotFound
from keel.store import ArtifactStore


@pytest.fixture(params=["local", "fsspec-memory", "s3"])
def artifacts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    """The same contract on a local folder, an fsspec filesystem and a real S3 server."""
    if request.param == "local":
        yield ArtifactStore(tmp_path / "artifacts")
        return
    if request.param == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        yield ArtifactStore(f"s3://{bucket}/keel")
        return
    location = f"memory://keel-test-{uuid.uuid4().hex}"
    yield ArtifactStore(location)
    import fsspec

    memory = fsspec.filesystem("memory")
    if memory.exists(location):
        memory.rm(location, recursive=True)


def test_put_returns_the_sha256_of_the_bytes(artifacts: ArtifactStore) -> None:
    """Artifacts are named by the hash of their content."""
    data = b"model bytes"
    assert artifacts.put_bytes(data) == hashlib.sha256(data).hexdigest()


def test_round_trip(artifacts: ArtifactStore) -> None:
    """What goes in comes out."""
    digest = artifacts.put_bytes(b"x" * 5000)
    assert artifacts.get_bytes(digest) == b"x" * 5000


def test_same_bytes_twice_is_one_artifact(artifacts: ArtifactStore) -> None:
    """Putting identical content again stores nothing new."""
    first = artifacts.put_bytes(b"same")
    second = artifacts.put_bytes(b"same")
    assert first == second
    assert list(artifacts.digests()) == [first]


def test_put_file_streams_and_fetch_verifies(artifacts: ArtifactStore, tmp_path: Path) -> None:
    """A file stored in chunks is fetched back byte-identical."""
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(3 * (1 << 20) + 7))
    digest = artifacts.put_file(source)
    copy = artifacts.fetch(digest, tmp_path / "out" / "copy.bin")
    assert copy.read_bytes() == source.read_bytes()


def test_put_stream_stores_the_bytes_under_their_digest_once(artifacts: ArtifactStore) -> None:
    """Chunks streamed in (as from another store) are stored under the sha256 of all of
    them (hashlib), read back whole, and streaming them again stores nothing new."""
    data = os.urandom(3 * (1 << 20) + 7)
    pieces = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    digest = artifacts.put_stream(iter(pieces))
    assert digest == hashlib.sha256(data).hexdigest()
    assert artifacts.get_bytes(digest) == data
    assert artifacts.put_stream(iter(pieces)) == digest
    assert list(artifacts.digests()) == [digest]


def test_a_failing_stream_raises_its_own_error_and_stores_nothing(
    artifacts: ArtifactStore,
) -> None:
    """A source that fails halfway (its connection dropped) raises its own error, not
    one about this store, and leaves no blob."""

    def dropped() -> Iterator[bytes]:
        yield b"x" * 65536
        raise ConnectionError("the source went away")

    with pytest.raises(ConnectionError, match="the source went away"):
        artifacts.put_stream(dropped())
    assert list(artifacts.digests()) == []


def test_missing_artifact_is_a_clear_error(artifacts: ArtifactStore) -> None:
    """Asking for an unknown digest says it is not there."""
    with pytest.raises(ArtifactNotFound, match="is not in"):
        artifacts.get_bytes("0" * 64)


@pytest.mark.parametrize("digest", ["", "abc", "Z" * 64, "../" * 21 + "a"])
def test_malformed_digest_is_refused(artifacts: ArtifactStore, digest: str) -> None:
    """Anything but 64 lowercase hex digits is refused before touching storage."""
    with pytest.raises(ArtifactError, match="not a sha256 digest"):
        artifacts.get_bytes(digest)


def _blob_path(root: Path, digest: str) -> Path:
    return root / "sha256" / digest[:2] / digest


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[:-10], id="truncated"),
        pytest.param(lambda b: b[:5] + b"X" + b[6:], id="tampered"),
        pytest.param(lambda b: b"", id="emptied"),
    ],
)
def test_damaged_artifact_is_refused(tmp_path: Path, damage: object) -> None:
    """A blob changed after it was written is refused on every read path."""
    store = ArtifactStore(tmp_path)
    digest = store.put_bytes(b"0123456789" * 100)
    blob = _blob_path(tmp_path, digest)
    blob.chmod(0o644)
    blob.write_bytes(damage(blob.read_bytes()))  # type: ignore[operator]
    with pytest.raises(ArtifactCorrupt, match="corrupt"):
        store.get_bytes(digest)
    with pytest.raises(ArtifactCorrupt):
        store.local_path(digest)
    with pytest.raises(ArtifactCorrupt):
        store.fetch(digest, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


def test_local_blobs_are_read_only(tmp_path: Path) -> None:
    """Stored blobs are made read-only so a stray write is refused."""
    store = ArtifactStore(tmp_path)
    digest = store.put_bytes(b"immutable")
    assert _blob_path(tmp_path, digest).stat().st_mode & 0o222 == 0


_SLOW_WRITER = """
import sys, time
from pathlib import Path
from keel.store import ArtifactStore

def chunks():
    for _ in range(10_000):
        yield b"x" * 65536
        time.sleep(0.001)
        print("writing", flush=True)

store = ArtifactStore(Path(sys.argv[1]))
store._write("a" * 64, chunks())
"""


def test_interrupted_write_leaves_no_visible_artifact(tmp_path: Path) -> None:
    """A writer killed mid-write never leaves a half blob under its final name."""
    with subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        for _ in range(20):
            child.stdout.readline()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    store = ArtifactStore(tmp_path)
    assert not store.exists("a" * 64)
    assert list(store.digests()) == []
    with pytest.raises(ArtifactNotFound):
        store.get_bytes("a" * 64)
