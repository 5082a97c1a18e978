"""``ArtifactStore.scratch``: a store of a block's own, in a local folder and on a real S3
server, gone when the block ends (done or failed), sharing nothing with the store it
lies in. What is left is listed with os.walk and s3fs, never through the store."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from keel.store import ArtifactStore
from tests.s3server import S3Server


def _files(folder: Path) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(top, name), folder)
        for top, _, names in os.walk(folder)
        for name in names
    )


def test_a_local_scratch_is_removed_and_the_shared_blob_stays(tmp_path: Path) -> None:
    """The same bytes in the store and in its scratch: after the block the scratch folder
    is gone, the store's blob (same digest) is still there and reads back."""
    store = ArtifactStore(tmp_path / "artifacts")
    digest = store.put_bytes(b"labels")
    with store.scratch() as scratch:
        assert scratch.put_bytes(b"labels") == digest == hashlib.sha256(b"labels").hexdigest()
        assert scratch.location.startswith(f"{tmp_path / 'artifacts'}/scratch/")
        assert scratch.get_bytes(digest) == b"labels"
        assert len(_files(tmp_path / "artifacts" / "scratch")) == 1
    assert _files(tmp_path / "artifacts") == [f"sha256/{digest[:2]}/{digest}"]
    assert store.get_bytes(digest) == b"labels"


def test_a_failed_block_removes_its_scratch_and_keeps_its_error(tmp_path: Path) -> None:
    """Ctrl-C in the block: the scratch's blob is gone and the interrupt goes on."""
    store = ArtifactStore(tmp_path / "artifacts")
    with pytest.raises(KeyboardInterrupt), store.scratch() as scratch:
        scratch.put_bytes(b"half done")
        raise KeyboardInterrupt
    assert _files(tmp_path / "artifacts") == []


def test_a_failed_block_removes_its_scratch_on_s3(s3_server: S3Server, s3_bucket: str) -> None:
    """The same on S3, the block's own error raised as it was; the store's blob of the
    same bytes stays."""
    store = ArtifactStore(f"s3://{s3_bucket}/keel")
    digest = store.put_bytes(b"labels")
    with pytest.raises(RuntimeError, match="cancelled"), store.scratch() as scratch:
        assert scratch.put_bytes(b"labels") == digest
        raise RuntimeError("cancelled")
    left = s3_server.filesystem().find(f"{s3_bucket}/keel", refresh=True)
    assert left == [f"{s3_bucket}/keel/sha256/{digest[:2]}/{digest}"]


def test_ending_one_scratch_leaves_the_other(s3_server: S3Server, s3_bucket: str) -> None:
    """Two scratches at once (two builds) hold the same bytes apart: ending one leaves
    the other's copy, readable; ending both leaves no blob."""
    store = ArtifactStore(f"s3://{s3_bucket}/keel")
    fs = s3_server.filesystem()
    with store.scratch() as kept:
        digest = kept.put_bytes(b"mine")
        with store.scratch() as other:
            other.put_bytes(b"mine")
        assert fs.find(f"{s3_bucket}/keel", refresh=True) == [
            f"{kept.location.removeprefix('s3://')}/sha256/{digest[:2]}/{digest}"
        ]
        assert kept.get_bytes(digest) == b"mine"
    assert [key for key in fs.find(s3_bucket, refresh=True) if "/sha256/" in key] == []
