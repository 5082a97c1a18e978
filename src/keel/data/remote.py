"""Files behind fsspec URLs (s3://, gs://, memory://, ...): list them and copy them to a
local folder so DuckDB reads them like any local file. Lineage keeps the URL.

A task on a Dask worker reads an artifact through a ``Blob``: the artifact store's
location (``s3://...``), the storage options from keel.yaml and the digest travel with
the task, and the worker fetches the blob (its digest verified) into a temporary folder
of its own. Nothing the task reads is a path on the machine that sent it, so workers on
other machines, in another working directory, need only reach the object store.

On a Dask worker, fetched blobs are kept in a cache on its disk (``BlobCache``), by
digest, so the next job that reads the same blob (validate after ingest, features after
validate) does not download it again: ``$KEEL_BLOB_CACHE`` names its folder (workers of
one machine may share it), else it is ``keel-blobs`` in the worker's local directory;
``$KEEL_BLOB_CACHE_BYTES`` bounds its size (4 GiB unless set; 0 turns it off), the least
recently read blobs going first.

On S3 the endpoint and credentials come from keel.yaml's ``storage:`` (passed in as
``storage``), else from the standard AWS environment, as for the artifact store. A
missing bucket, refused or missing credentials are a ``SourceError`` (one sentence;
retrying cannot help); an unreachable endpoint is a ``ConnectionError``, which ingestion
retries as the source's ``retry:`` says.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from keel.errors import ComputeError, MissingExtraError, SourceError
from keel.store.artifacts import (
    hash_file,
    is_botocore,
    is_refusal,
    open_filesystem,
    unavailable_reason,
)

if TYPE_CHECKING:
    from keel.store.artifacts import ArtifactStore

__all__ = ["Blob", "BlobCache", "fetch_remote", "object_chunks", "readable", "where_to_read"]

T = TypeVar("T")
BUCKETED = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss")  # the first path part is a bucket
CACHE_ENV = "KEEL_BLOB_CACHE"  # the folder of the blob cache
CACHE_BYTES_ENV = "KEEL_BLOB_CACHE_BYTES"  # its size bound in bytes (0: no cache)
CACHE_BYTES = 4 << 30
STALE_SECONDS = 3600  # a temporary file untouched this long was left by a killed worker


def fetch_remote(
    url: str, folder: Path, storage: Mapping[str, Mapping[str, Any]] | None = None
) -> list[tuple[Path, str]]:
    """Copy the files ``url`` names (a file, a folder or a glob) into ``folder``;
    ``storage``: the filesystem's options by protocol (``keel.store.storage_options``).

    Returns (local copy, URL) pairs in URL order.
    """
    fs, path = _filesystem(url, storage)
    protocol = url.split("://", 1)[0]
    names = _guarded(url, lambda: _matches(fs, path))
    if not names and protocol in BUCKETED:
        _guarded(url, lambda: _bucket_exists(fs, url))
    copies = []
    for index, name in enumerate(names):
        local = folder / f"{index:06d}-{Path(name).name}"
        shown = f"{protocol}://{name.removeprefix('/')}"
        _guarded(shown, partial(fs.get, name, str(local)))
        copies.append((local, shown))
    return copies


@dataclass(frozen=True)
class Blob:
    """An artifact as a task on another machine reads it: the store's location (a URL),
    the storage options by protocol (keel.yaml's ``storage:``) and the digest."""

    location: str
    storage: dict[str, dict[str, Any]]
    digest: str


def where_to_read(artifacts: ArtifactStore, digest: str) -> str | Blob:
    """How a task reads an artifact: by its verified path when the store is a local folder
    (the workers see it: the same machine or a shared file system), else as a ``Blob``."""
    if artifacts.is_local:
        return str(artifacts.local_path(digest))
    storage = {protocol: dict(options) for protocol, options in artifacts.task_storage.items()}
    return Blob(artifacts.location, storage, digest)


@contextmanager
def readable(where: str | Blob) -> Iterator[str]:
    """A local path to read ``where`` from: a path as it is; a blob fetched from its store
    (digest verified) into a temporary folder on this machine, removed afterwards, through
    this machine's ``BlobCache`` when there is one (on a Dask worker)."""
    if isinstance(where, str):
        yield where
        return
    from keel.store.artifacts import ArtifactStore

    store = ArtifactStore(where.location, where.storage)
    cache = blob_cache()
    if cache is None:
        with tempfile.TemporaryDirectory(prefix="keel-blob-") as folder:
            yield str(store.fetch(where.digest, Path(folder) / f"{where.digest}.parquet"))
        return
    with cache.reading() as folder:
        yield str(cache.read(where.digest, folder / f"{where.digest}.parquet", store.fetch))


@dataclass(frozen=True)
class BlobCache:
    """Verified blobs on this machine's disk, by digest, about ``limit`` bytes at most.

    A blob enters only once fetched with its digest verified and its bytes on disk
    (fsync), by a rename from a temporary name, so a worker killed while fetching leaves
    a temporary file that is never read (and is removed once stale). A reader gets a hard
    link of the entry in a folder of its own, so evicting the entry (least recently read
    first: each read sets its access time) never pulls the file from under a task reading
    it; tasks and workers sharing the folder are safe.

    Every read hashes the reader's link and serves it only when the digest matches (for
    66 MiB, about 0.15 s; fetching it again takes several times that). The entry's name
    records its size and modification time as verified (``<digest>.<size>.<mtime_ns>``),
    which turns away a truncated or rewritten entry without reading it; but a write can
    keep the size and put the modification time back (``os.utime``, ``cp -p``,
    ``rsync -t``), and the change time cannot stand in, since the cache's own links and
    access times change it. A changed entry is deleted and the blob fetched again, as
    local artifacts are hashed on every read (``ArtifactStore.local_path``).
    """

    folder: Path
    limit: int

    @contextmanager
    def reading(self) -> Iterator[Path]:
        """A folder of the reader's own, beside the entries (hard links need the same
        file system), removed afterwards."""
        readers = self.folder / ".reading"
        readers.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=readers) as folder:
            yield Path(folder)

    def read(self, digest: str, dest: Path, fetch: Callable[[str, Path], Path]) -> Path:
        """``dest``: the blob ``digest``, from the cache when the entry's bytes still hash
        to ``digest``, else fetched into it by ``fetch(digest, path)`` (which verifies)."""
        entry = self.entry(digest)
        if entry is not None and _linked(entry, dest):
            if hash_file(dest) == digest:
                _read_now(entry)
                return dest
            dest.unlink()
            entry.unlink(missing_ok=True)  # changed since it was verified
        entry = self._add(digest, fetch)
        if not _linked(entry, dest):  # evicted by another task since
            return fetch(digest, dest)
        _read_now(entry)
        return dest

    def entry(self, digest: str) -> Path | None:
        """The sealed entry of ``digest`` (its bytes not read); an entry whose size or
        modification time has changed since it was verified is deleted, never returned."""
        found = None
        for path in sorted(self.folder.glob(f"{digest}.*")):
            size, _, mtime = path.name.removeprefix(f"{digest}.").partition(".")
            with suppress(FileNotFoundError):
                stat = path.stat()
                if found is None and (f"{stat.st_size}", f"{stat.st_mtime_ns}") == (size, mtime):
                    found = path
                else:  # damaged, or a twin added by a task that fetched it at the same time
                    path.unlink()
        return found

    def _add(self, digest: str, fetch: Callable[[str, Path], Path]) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        part = self.folder / f".{digest}.{uuid.uuid4().hex}.part"
        try:
            fetch(digest, part)
            with part.open("rb") as written:
                os.fsync(written.fileno())
            added = self.entry(digest)  # by a task that fetched it at the same time
            if added is not None:
                return added
            stat = part.stat()
            entry = self.folder / f"{digest}.{stat.st_size}.{stat.st_mtime_ns}"
            os.replace(part, entry)
        finally:
            part.unlink(missing_ok=True)
        self._evict(entry, stat.st_size)
        return entry

    def _evict(self, kept: Path, size: int) -> None:
        """Delete the least recently read entries (never ``kept``) until the rest fit
        ``limit``, and temporary files left by killed workers."""
        entries, now = [], time.time()
        for reader in (self.folder / ".reading").glob("*"):  # left by killed workers
            with suppress(FileNotFoundError):
                if now - reader.stat().st_mtime > STALE_SECONDS * 24:
                    shutil.rmtree(reader, ignore_errors=True)
        for path in self.folder.iterdir():
            with suppress(FileNotFoundError):
                stat = path.stat()
                if path.name.startswith("."):
                    if path.is_file() and now - stat.st_mtime > STALE_SECONDS:
                        path.unlink()
                elif path != kept:
                    entries.append((stat.st_atime_ns, stat.st_size, path))
        total = size + sum(bytes_ for _, bytes_, _ in entries)
        for _, bytes_, path in sorted(entries):
            if total <= self.limit:
                break
            path.unlink(missing_ok=True)
            total -= bytes_


def _linked(entry: Path, dest: Path) -> bool:
    """Hard-link ``entry`` as ``dest``; False when another task evicted it meanwhile."""
    try:
        os.link(entry, dest)
    except FileNotFoundError:
        return False
    return True


def _read_now(entry: Path) -> None:
    """Set ``entry``'s access time (eviction goes by it), keeping its modification time
    (its name records that)."""
    with suppress(FileNotFoundError):
        os.utime(entry, ns=(time.time_ns(), entry.stat().st_mtime_ns))


def blob_cache() -> BlobCache | None:
    """This machine's blob cache: in ``$KEEL_BLOB_CACHE``, else in the Dask worker's
    local directory; None outside a worker without that variable, or when
    ``$KEEL_BLOB_CACHE_BYTES`` is 0."""
    limit = _cache_bytes()
    folder = os.environ.get(CACHE_ENV) or _worker_directory()
    if not folder or limit == 0:
        return None
    return BlobCache(Path(folder), limit)


def _cache_bytes() -> int:
    given = os.environ.get(CACHE_BYTES_ENV, "").strip()
    if not given:
        return CACHE_BYTES
    if not given.isdigit():
        raise ComputeError(
            f"${CACHE_BYTES_ENV} is {given!r}; set it to the blob cache's size in bytes "
            "(0 turns the cache off)"
        )
    return int(given)


def _worker_directory() -> str | None:
    """The Dask worker's local directory + ``keel-blobs``, or None outside a task."""
    from keel.compute.engine import current_worker

    worker = current_worker()
    return None if worker is None else os.path.join(worker.local_directory, "keel-blobs")


def object_chunks(fs: Any, name: str, shown: str, size: int = 1 << 20) -> Iterator[bytes]:
    """The bytes of the object ``name`` on ``fs``, in chunks (never all in memory);
    failures as ``_guarded`` says (``shown``: the URL named in them)."""
    handle = _guarded(shown, lambda: fs.open(name, "rb"))
    with handle:
        while chunk := _guarded(shown, lambda: handle.read(size)):
            yield chunk


def _guarded(url: str, call: Callable[[], T]) -> T:
    """Run one call on the remote filesystem, its failure as a SourceError (refused,
    missing) or a ConnectionError (worth a retry)."""
    try:
        return call()
    except Exception as error:
        if is_refusal(error):
            raise SourceError(unavailable_reason(url, error, setting="path")) from None
        if isinstance(error, FileNotFoundError):
            raise SourceError(f"cannot read {url}: {error}") from None
        if isinstance(error, OSError | TimeoutError) or is_botocore(error):
            raise ConnectionError(unavailable_reason(url, error, setting="path")) from None
        raise


def _bucket_exists(fs: Any, url: str) -> None:
    """Nothing matched: say so by name when it is the bucket that is missing."""
    bucket = url.split("://", 1)[1].split("/", 1)[0]
    if not fs.exists(bucket):
        raise SourceError(
            f"bucket '{bucket}' does not exist (path: {url}); create it or point path: in "
            "keel.yaml at an existing bucket"
        )


def _filesystem(url: str, storage: Mapping[str, Mapping[str, Any]] | None) -> tuple[Any, str]:
    try:
        return open_filesystem(url, storage)
    except ImportError as error:
        if url.startswith(("s3://", "s3a://")):
            raise MissingExtraError("s3fs", "s3") from None
        raise SourceError(f"cannot open {url}: {error}") from None
    except ValueError as error:
        raise SourceError(f"cannot open {url}: {error}") from None


def _matches(fs: Any, path: str) -> list[str]:
    if any(char in path for char in "*?["):
        found = fs.glob(path)
    elif fs.isdir(path):
        found = fs.find(path)
    else:
        found = [path] if fs.exists(path) else []
    return sorted(str(name) for name in found if not fs.isdir(name))
