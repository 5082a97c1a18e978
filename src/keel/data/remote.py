"""Files behind fsspec URLs (s3://, gs://, memory://, ...): list them and copy them to a
local folder so DuckDB reads them like any local file. Lineage keeps the URL.

On S3 the endpoint and credentials come from keel.yaml's ``storage:`` (passed in as
``storage``), else from the standard AWS environment, as for the artifact store. A
missing bucket, refused or missing credentials are a ``SourceError`` (one sentence;
retrying cannot help); an unreachable endpoint is a ``ConnectionError``, which ingestion
retries as the source's ``retry:`` says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from keel.errors import MissingExtraError, SourceError
from keel.store.artifacts import is_botocore, is_refusal, open_filesystem, unavailable_reason

__all__ = ["fetch_remote"]

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
