"""Reading published data versions back: local Parquet paths, or a pandas DataFrame.

The seam other layers use (training, features): ``Catalog`` finds a version, these
functions read it. A version is one Parquet blob, or (a partitioned source's) a manifest
naming one blob per partition, all of one schema; readers see the same rows either way,
in arrival order (partition order, then row order within a file). Remote blobs are
fetched (and verified against their digest) before any read.
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
    from keel.compute.engine import Engine
    from keel.project import Project
    from keel.schema import SourceConfig

__all__ = [
    "Published",
    "accumulates",
    "is_manifest",
    "parquet_path",
    "read_partition_arrow",
    "read_partition_frame",
    "read_published",
    "read_version",
    "table_versions",
    "upsert_keys",
    "version_digests",
    "version_files",
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


def is_manifest(version: DataVersion) -> bool:
    """Whether ``version`` is a partitioned source's manifest (``partitioned: true``)."""
    return bool((version.lineage or {}).get("manifest"))


def version_digests(artifacts: ArtifactStore, version: DataVersion) -> list[str]:
    """The digests of the Parquet blobs that hold ``version``'s rows, in row order: its
    partitions' for a manifest version, else its one artifact."""
    import orjson

    if not is_manifest(version):
        return [version.artifact]
    manifest = orjson.loads(artifacts.get_bytes(str(version.lineage["manifest"])))
    return [str(part["sha256"]) for part in manifest["partitions"]]


@contextmanager
def version_files(artifacts: ArtifactStore, version: DataVersion) -> Iterator[list[Path]]:
    """Verified local paths to ``version``'s Parquet files, in row order (one for a plain
    version, one per partition for a manifest)."""
    with ExitStack() as stack:
        digests = version_digests(artifacts, version)
        yield [stack.enter_context(parquet_path(artifacts, digest)) for digest in digests]


def read_version(project: Project, version: DataVersion) -> Any:
    """The rows of a data version as a pandas DataFrame, in their arrival order."""
    with version_files(project.artifacts, version) as paths:
        return _read_union([paths], ())


@dataclass(frozen=True)
class Published:
    """A source's rows as of one data version, and the versions they were read from."""

    frame: Any
    versions: tuple[DataVersion, ...]


def accumulates(config: SourceConfig) -> bool:
    """Whether each version holds only its new batch (new files, or rows past a watermark).

    A SQL query or a callable without a ``watermark:`` is read whole on every ingest, so
    each of its versions is a complete snapshot of the source instead. (So is a manifest
    version of a partitioned source, whatever this says: see ``table_versions``.)
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


def table_versions(
    live: Sequence[DataVersion], upto: DataVersion | None, snapshots: bool
) -> list[DataVersion]:
    """``versions_as_of``, where a manifest version is the whole table when it was
    ingested: the newest manifest among the chosen versions replaces every version before
    it. A plain version after a manifest (``partitioned: true`` taken off, and the files
    ingested again as new batches) would count the table's rows twice, so it is refused."""
    chosen = versions_as_of(live, upto, snapshots)
    manifests = [i for i, version in enumerate(chosen) if is_manifest(version)]
    if not manifests:
        return chosen
    after = chosen[manifests[-1] + 1 :]
    if after:
        first, plain = chosen[manifests[-1]], after[0]
        raise SourceError(
            f"source '{first.source}' has version {plain.short}, ingested without "
            f"partitioned: true after the partitioned version {first.short}, so their rows "
            f"overlap; retire the versions since {first.short} (`keel data retire`), or set "
            "partitioned: true and run `keel ingest` to publish the whole table again"
        )
    return chosen[manifests[-1] :]


def read_published(
    project: Project, source: str, upto: DataVersion | None = None, engine: Engine | None = None
) -> Published:
    """The rows of ``source`` as of ``upto`` (default: its newest live version), oldest first.

    Retired versions are skipped. Read with DuckDB from the versions' Parquet (verified
    against their digests); columns are matched by name, so a column added later is null
    in older versions' rows. A partitioned source's manifest version is its whole table
    (``table_versions``); with a Dask ``engine`` and artifacts on this file system, its
    partitions are read one per task on the workers. With ``key_policy: upsert`` and a
    ``key:`` (one column or several), only the newest row of each key is kept (by version
    order, then row order within a version). No live version gives ``Published(None, ())``.
    """
    from keel.data.catalog import Catalog

    if source not in project.config.sources:
        known = ", ".join(project.config.sources) or "none are declared"
        raise SourceError(f"no source named '{source}' in keel.yaml (sources: {known})")
    config = project.config.sources[source]
    live = Catalog(project.store).live_versions(source)
    versions = table_versions(live, upto, snapshots=not accumulates(config))
    if not versions:
        return Published(None, ())
    keys = upsert_keys(config)
    with ExitStack() as stack:
        files = [stack.enter_context(version_files(project.artifacts, v)) for v in versions]
        if _on_cluster(engine, project, versions):
            assert engine is not None
            return Published(_read_on(engine, files[0], keys), tuple(versions))
        return Published(_read_union(files, keys), tuple(versions))


def _on_cluster(engine: Engine | None, project: Project, versions: list[DataVersion]) -> bool:
    """Whether to read on ``engine``'s workers: a Dask engine, one manifest version, and
    blobs the workers can open by path."""
    if engine is None or engine.name == "local" or not project.artifacts.is_local:
        return False
    return len(versions) == 1 and is_manifest(versions[0])


def upsert_keys(config: SourceConfig) -> tuple[str, ...]:
    """The key columns whose newest row wins, when the source upserts (``key_policy:
    upsert``); none otherwise."""
    return config.keys if config.key_policy == "upsert" else ()


ORDER, FILE, ROW = "__keel_version_order", "__keel_file_order", "__keel_row_number"
_NAME = "__keel_file_name"


def _read_union(versions: list[list[Path]], keys: tuple[str, ...]) -> Any:
    """Rows of every version's Parquet files in order (version, file, row); with
    ``keys``, only the last row of each key (a row with a null key column is kept as it
    is). A version's files share one schema; versions are matched by column name."""
    import duckdb

    parts = [_version_sql(order, paths) for order, paths in enumerate(versions)]
    with duckdb.connect() as con:
        return con.execute(newest_sql(" UNION ALL BY NAME ".join(parts), keys)).df()


def _version_sql(order: int, paths: list[Path]) -> str:
    """One version's rows with their version, file and row positions."""
    listed = ", ".join(f"'{_literal(path)}'" for path in paths)
    named, position = "", "0"
    if len(paths) > 1:
        named, position = f", filename = '{_NAME}'", f"list_position([{listed}], {_NAME}) - 1"
    # by name: a file's column without a type (all null) takes the other files' type
    rows = f"read_parquet([{listed}], file_row_number = true, union_by_name = true{named})"
    dropped = f"EXCLUDE ({_NAME}) " if named else ""
    return (
        f"SELECT * {dropped}RENAME (file_row_number AS {ROW}), {order} AS {ORDER}, "
        f"{position} AS {FILE} FROM {rows}"
    )


def newest_sql(rows: str, keys: tuple[str, ...]) -> str:
    """The query over ``rows`` (a relation with the order columns): ordered, the order
    columns dropped; with ``keys``, only each key's newest row."""
    newest = ""
    if keys:
        columns = ['"' + key.replace('"', '""') + '"' for key in keys]
        nulls = " OR ".join(f"{column} IS NULL" for column in columns)
        newest = (
            f"QUALIFY {nulls} OR row_number() OVER "
            f"(PARTITION BY {', '.join(columns)} ORDER BY {ORDER} DESC, {FILE} DESC, "
            f"{ROW} DESC) = 1 "
        )
    return (
        f"SELECT * EXCLUDE ({ORDER}, {FILE}, {ROW}) FROM ({rows}) "
        f"{newest}ORDER BY {ORDER}, {FILE}, {ROW}"
    )


def _read_on(engine: Engine, paths: list[Path], keys: tuple[str, ...]) -> Any:
    """One version's files read on ``engine``, a task per file (each worker decodes its
    file into Arrow); the same query as ``_read_union`` then orders them here, so the
    frame is the local read's, dtypes included."""
    import duckdb

    items = [(position, str(path)) for position, path in enumerate(paths)]
    parts: dict[int, Any] = dict(engine.map(read_partition_arrow, None, items))
    with duckdb.connect() as con:
        for position, part in parts.items():
            con.register(f"keel_partition_{position}", part)
        rows = " UNION ALL ".join(f"SELECT * FROM keel_partition_{p}" for p in sorted(parts))
        return con.execute(newest_sql(rows, keys)).df()


def read_partition_arrow(shared: None, item: tuple[int, str]) -> Any:
    """One Parquet file (on a worker) as an Arrow table with its order columns."""
    import duckdb

    position, path = item
    with duckdb.connect() as con:
        return con.sql(
            f"SELECT * RENAME (file_row_number AS {ROW}), 0 AS {ORDER}, {position} AS {FILE} "
            f"FROM read_parquet('{_literal(Path(path))}', file_row_number = true)"
        ).to_arrow_table()


def read_partition_frame(path: str) -> Any:
    """One Parquet file (on a worker) as pandas, typed as DuckDB types the local read."""
    import duckdb

    with duckdb.connect() as con:
        return con.sql(f"SELECT * FROM read_parquet('{_literal(Path(path))}')").df()


def _literal(path: Path) -> str:
    return str(path).replace("'", "''")
