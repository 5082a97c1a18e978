"""Reading published data versions back: a local Parquet path, or a pandas DataFrame.

The seam other layers use (training, features): ``Catalog`` finds a version, these
functions read it. Blobs are verified against their digest before any read.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.data.model import DataVersion
from keel.errors import DataVersionNotFound, SourceError
from keel.store.artifacts import ArtifactStore

if TYPE_CHECKING:
    from keel.project import Project
    from keel.schema import SourceConfig

__all__ = [
    "Published",
    "accumulates",
    "parquet_path",
    "read_published",
    "read_version",
    "upsert_keys",
    "versions_as_of",
]


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


@dataclass(frozen=True)
class Published:
    """A source's rows as of one data version, and the versions they were read from."""

    frame: Any
    versions: tuple[DataVersion, ...]


def accumulates(config: SourceConfig) -> bool:
    """Whether each version holds only its new batch (new files, or rows past a watermark).

    A SQL query or a callable without a ``watermark:`` is read whole on every ingest, so
    each of its versions is a complete snapshot of the source instead.
    """
    return config.kind in ("csv", "parquet") or config.watermark is not None


def versions_as_of(
    live: Sequence[DataVersion], upto: DataVersion | None, snapshots: bool
) -> list[DataVersion]:
    """The live versions (oldest first) that make up a source as of ``upto``.

    Every live version up to and including ``upto`` (default: the newest); only the last
    of those when each version is a whole snapshot of the source (``snapshots``).
    """
    end = len(live)
    if upto is not None:
        ids = [version.id for version in live]
        if upto.id not in ids:
            raise DataVersionNotFound(
                f"data version {upto.short} is not a live version of source '{upto.source}'; "
                "see `keel data list` for its versions"
            )
        end = ids.index(upto.id) + 1
    chosen = list(live[:end])
    return chosen[-1:] if snapshots else chosen


def read_published(project: Project, source: str, upto: DataVersion | None = None) -> Published:
    """The rows of ``source`` as of ``upto`` (default: its newest live version), oldest first.

    Retired versions are skipped. Read with DuckDB from the versions' Parquet (verified
    against their digests); columns are matched by name, so a column added later is null
    in older versions' rows. With ``key_policy: upsert`` and a ``key:`` (one column or
    several), only the newest row of each key is kept (by version order, then row order
    within a version). No live version gives ``Published(None, ())``.
    """
    from keel.data.catalog import Catalog

    if source not in project.config.sources:
        known = ", ".join(project.config.sources) or "none are declared"
        raise SourceError(f"no source named '{source}' in keel.yaml (sources: {known})")
    config = project.config.sources[source]
    live = Catalog(project.store).live_versions(source)
    versions = versions_as_of(live, upto, snapshots=not accumulates(config))
    if not versions:
        return Published(None, ())
    with ExitStack() as stack:
        paths = [stack.enter_context(parquet_path(project.artifacts, v.artifact)) for v in versions]
        return Published(_read_union(paths, upsert_keys(config)), tuple(versions))


def upsert_keys(config: SourceConfig) -> tuple[str, ...]:
    """The key columns whose newest row wins, when the source upserts (``key_policy:
    upsert``); none otherwise."""
    return config.keys if config.key_policy == "upsert" else ()


_ORDER, _ROW = "__keel_version_order", "__keel_row_number"


def _read_union(paths: list[Path], keys: tuple[str, ...]) -> Any:
    """Rows of every Parquet file in order; with ``keys``, only the last row of each key
    (a row with a null key column is kept as it is)."""
    import duckdb

    parts = [
        f"SELECT * RENAME (file_row_number AS {_ROW}), {order} AS {_ORDER} "
        f"FROM read_parquet('{_literal(path)}', file_row_number = true)"
        for order, path in enumerate(paths)
    ]
    newest = ""
    if keys:
        columns = ['"' + key.replace('"', '""') + '"' for key in keys]
        nulls = " OR ".join(f"{column} IS NULL" for column in columns)
        newest = (
            f"QUALIFY {nulls} OR row_number() OVER "
            f"(PARTITION BY {', '.join(columns)} ORDER BY {_ORDER} DESC, {_ROW} DESC) = 1 "
        )
    query = (
        f"SELECT * EXCLUDE ({_ORDER}, {_ROW}) FROM ({' UNION ALL BY NAME '.join(parts)}) "
        f"{newest}ORDER BY {_ORDER}, {_ROW}"
    )
    with duckdb.connect() as con:
        return con.execute(query).df()


def _literal(path: Path) -> str:
    return str(path).replace("'", "''")
