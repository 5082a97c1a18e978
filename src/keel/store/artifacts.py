"""The artifact store: immutable blobs addressed by the sha256 of their bytes.

Blobs live under ``sha256/<first two hex digits>/<digest>`` in a local folder or behind
any fsspec URL. A write goes to a temporary name first and is renamed into place, so a
reader never sees half a blob. Every read re-hashes the bytes and refuses a blob whose
digest does not match: a tampered or truncated artifact is an error, never a model.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from keel.errors import ArtifactCorrupt, ArtifactError, ArtifactNotFound

__all__ = ["ArtifactStore"]

_CHUNK = 1 << 20
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class ArtifactStore:
    """Put and get content-addressed blobs in a local folder or an fsspec location."""

    def __init__(self, location: str | Path) -> None:
        self.location = str(location)
        self._local = "://" not in self.location or self.location.startswith("file://")
        self._fs: Any = None if self._local else _filesystem(self.location)
        self._root = self.location.removeprefix("file://").rstrip("/")

    # -- writing --------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; return its sha256 hex digest. Storing twice is a no-op."""
        digest = hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            self._write(digest, iter([data]))
        return digest

    def put_file(self, path: Path) -> str:
        """Store a file's bytes, streaming; return the digest."""
        digest = _hash_file(path)
        if not self.exists(digest):
            self._write(digest, _chunks_of(path))
        return digest

    # -- reading --------------------------------------------------------------------

    def get_bytes(self, digest: str) -> bytes:
        """The verified bytes of an artifact."""
        data = self._read_all(digest)
        _verify(digest, hashlib.sha256(data).hexdigest())
        return data

    def fetch(self, digest: str, dest: Path) -> Path:
        """Copy an artifact to ``dest``, verifying it; ``dest`` appears only when complete."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        hasher = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".keel-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, self._open(digest) as src:
                while chunk := src.read(_CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
            _verify(digest, hasher.hexdigest())
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return dest

    def local_path(self, digest: str) -> Path:
        """A verified local path to read the artifact from (local stores only)."""
        if not self._local:
            raise ArtifactError(f"{self.location} is not a local folder; use fetch() instead")
        path = Path(self._key(digest))
        if not path.exists():
            raise self._missing(digest)
        _verify(digest, _hash_file(path))
        return path

    def exists(self, digest: str) -> bool:
        key = self._key(digest)
        return os.path.exists(key) if self._local else bool(self._fs.exists(key))

    def digests(self) -> Iterator[str]:
        """Every stored digest (for audits and garbage collection)."""
        base = f"{self._root}/sha256"
        if self._local:
            names = [path.name for path in Path(base).glob("*/*")]
        else:
            names = [key.rsplit("/", 1)[-1] for key in self._fs.find(base)]
        yield from sorted(name for name in names if _DIGEST.match(name))

    # -- internals ------------------------------------------------------------------

    def _key(self, digest: str) -> str:
        if not _DIGEST.match(digest):
            raise ArtifactError(f"'{digest}' is not a sha256 digest (64 lowercase hex digits)")
        return f"{self._root}/sha256/{digest[:2]}/{digest}"

    def _write(self, digest: str, chunks: Iterator[bytes]) -> None:
        key = self._key(digest)
        if self._local:
            _write_local(Path(key), Path(self._root) / "tmp", chunks)
            return
        tmp = f"{self._root}/tmp/{uuid.uuid4().hex}.part"
        with self._fs.open(tmp, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        self._fs.mv(tmp, key)

    def _open(self, digest: str) -> IO[bytes]:
        key = self._key(digest)
        try:
            return open(key, "rb") if self._local else self._fs.open(key, "rb")
        except FileNotFoundError:
            raise self._missing(digest) from None

    def _read_all(self, digest: str) -> bytes:
        with self._open(digest) as handle:
            return handle.read()

    def _missing(self, digest: str) -> ArtifactNotFound:
        return ArtifactNotFound(f"artifact {digest[:12]} is not in {self.location}")


def _filesystem(location: str) -> Any:
    import fsspec

    try:
        fs, _ = fsspec.core.url_to_fs(location)
    except (ImportError, ValueError) as error:
        raise ArtifactError(f"cannot open artifact store {location}: {error}") from None
    return fs


def _write_local(path: Path, tmp_dir: Path, chunks: Iterator[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o444)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _hash_file(path: Path) -> str:
    hasher = hashlib.sha256()
    for chunk in _chunks_of(path):
        hasher.update(chunk)
    return hasher.hexdigest()


def _chunks_of(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def _verify(expected: str, actual: str) -> None:
    if actual != expected:
        raise ArtifactCorrupt(
            f"artifact {expected[:12]} is corrupt (its bytes hash to {actual[:12]}); it was "
            "modified or truncated after it was written: restore it or produce it again"
        )
