"""Files behind fsspec URLs (s3://, gs://, memory://, ...): list them and copy them to a
local folder so DuckDB reads them like any local file. Lineage keeps the URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keel.errors import SourceError

__all__ = ["fetch_remote"]


def fetch_remote(url: str, folder: Path) -> list[tuple[Path, str]]:
    """Copy the files ``url`` names (a file, a folder or a glob) into ``folder``.

    Returns (local copy, URL) pairs in URL order.
    """
    fs, path = _filesystem(url)
    protocol = url.split("://", 1)[0]
    names = _matches(fs, path)
    copies = []
    for index, name in enumerate(names):
        local = folder / f"{index:06d}-{Path(name).name}"
        try:
            fs.get(name, str(local))
        except (FileNotFoundError, PermissionError) as error:
            raise SourceError(f"cannot read {protocol}://{name}: {error}") from None
        except OSError as error:  # the network or the store hiccupped: worth a retry
            raise ConnectionError(f"reading {protocol}://{name} failed: {error}") from None
        copies.append((local, f"{protocol}://{name.removeprefix('/')}"))
    return copies


def _filesystem(url: str) -> tuple[Any, str]:
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)  # type: ignore[no-any-return]
    except (ImportError, ValueError) as error:
        raise SourceError(f"cannot open {url}: {error}") from None


def _matches(fs: Any, path: str) -> list[str]:
    if any(char in path for char in "*?["):
        found = fs.glob(path)
    elif fs.isdir(path):
        found = fs.find(path)
    else:
        found = [path] if fs.exists(path) else []
    return sorted(str(name) for name in found if not fs.isdir(name))
