"""Reading published data versions back: a local Parquet path, or a pandas DataFrame.

The seam other layers use (training, features): ``Catalog`` finds a version, these
functions read it. Blobs are verified against their digest before any read.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.data.model import DataVersion
from keel.store.artifacts import ArtifactStore

if TYPE_CHECKING:
    from keel.project import Project

__all__ = ["parquet_path", "read_version"]


@contextmanager
def parquet_path(artifacts: ArtifactStore, digest: str) -> Iterator[Path]:
    """A verified local path to a Parquet blob: in place, or copied from a remote store."""
    location = artifacts.location
    if "://" not in location or location.startswith("file://"):
        yield artifacts.local_path(digest)
        return
    with tempfile.TemporaryDirectory(prefix="keel-version-") as folder:
        yield artifacts.fetch(digest, Path(folder) / f"{digest}.parquet")


def read_version(project: Project, version: DataVersion) -> Any:
    """The rows of a data version as a pandas DataFrame, in their arrival order."""
    import duckdb

    with parquet_path(project.artifacts, version.artifact) as path, duckdb.connect() as con:
        literal = str(path).replace("'", "''")
        return con.execute(f"SELECT * FROM read_parquet('{literal}')").df()
