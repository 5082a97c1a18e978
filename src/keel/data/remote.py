"""Files behind fsspec URLs (s3://, gs://, memory://, ...): list them and copy them to a
local folder so DuckDB reads them like any local file. Lineage keeps the URL.

A task on a Dask worker reads an artifact through a ``Blob``: the artifact store's
location (``s3://...``), the storage options from keel.yaml and the digest travel with
the task, and the worker fetches the blob (its digest verified) into a temporary folder
of its own. Nothing the task reads is a path on the machine that sent it, so workers on
other machines, in another working directory, need only reach the object store.

On S3 the endpoint and credentials come from keel.yaml's ``storage:`` (passed in as
``storage``), else from the standard AWS environment, as for the artifact store. A
missing bucket, refused or missing credentials are a ``SourceError`` (one sentence;
retrying cannot help); an unreachable endpoint is a ``ConnectionError``, which ingestion
retries as the source's ``retry:`` says.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from keel.errors import MissingExtraError, SourceError
from keel.store.artifacts import is_botocore, is_refusal, open_filesystem, unavailable_reason

if TYPE_CHECKING:
    from keel.store.artifacts import ArtifactStore

__all__ = ["Blob", "fetch_remote", "object_chunks", "readable", "where_to_read"]

T = TypeVar("T")
BUCKETED = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss")  # the first path part is a bucket


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
    (digest verified) into a temporary folder on this machine, removed afterwards."""
    if isinstance(where, str):
        yield where
        return
    from keel.store.artifacts import ArtifactStore

    store = ArtifactStore(where.location, where.storage)
    with tempfile.TemporaryDirectory(prefix="keel-blob-") as folder:
        yield str(store.fetch(where.digest, Path(folder) / f"{where.digest}.parquet"))


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
