"""A table too big for one read, as partitions: pieces any engine can read on its own.

A table is a Parquet or CSV file, a folder of them, a glob, or a declared source. Each
file is one partition or more: a Parquet file is cut into row ranges of at most
``rows`` (its row count is in its footer, so cutting reads no data); a CSV file stays
whole (finding row boundaries would mean reading it). A ``Partition`` is a plain value:
a Dask worker reads its partition itself, the client sends only the description.

A table may be remote (``s3://bucket/prefix/``, a glob, or a source whose path is one):
DuckDB then reads it through the fsspec filesystem (credentials and endpoint from the
standard environment, on every worker), so no file is copied first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from keel.data.sources import csv_options, list_files
from keel.errors import SourceError
from keel.schema import SourceConfig

Storage = Mapping[str, Mapping[str, Any]] | None  # keel.yaml's storage: options by protocol

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "UNTYPED",
    "Partition",
    "Table",
    "connect",
    "joined_schema",
    "plan_partitions",
    "read_partition",
    "resolve_table",
    "schema_difference",
]

Kind = Literal["csv", "parquet"]
UNTYPED = '"NULL"'
"""DuckDB's type of a column that has none (Arrow's ``null``: pandas writes an object
column with no value so, as in an empty file): every value null, so any type holds it."""
_SUFFIXES: dict[str, Kind] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class Table:
    """The files of one table, their format, and DuckDB's CSV options for them."""

    kind: Kind
    files: tuple[str, ...]
    options: str = ""
    storage: Storage = None  # keel.yaml's storage: options, for s3:// files


@dataclass(frozen=True)
class Partition:
    """Rows ``start`` to ``start + rows`` of one file (``rows`` None: to its end)."""

    index: int
    path: str
    kind: Kind
    start: int = 0
    rows: int | None = None
    options: str = ""
    storage: Storage = None

    @property
    def name(self) -> str:
        """How findings and errors name the partition: the file, and the rows if cut."""
        if self.rows is None and self.start == 0:
            return self.path
        return f"{self.path} rows {self.start}-{self.start + (self.rows or 0) - 1}"


def resolve_table(
    root: Path, spec: str, sources: dict[str, SourceConfig], storage: Storage = None
) -> Table:
    """The table ``spec`` names: a declared csv/parquet source, or a path, folder or glob
    (relative to the project); ``storage``: keel.yaml's options for remote files."""
    config = sources.get(spec)
    if config is not None:
        if config.kind not in ("csv", "parquet") or config.path is None:
            raise SourceError(f"source '{spec}' is {config.kind}; give a csv or parquet source")
        files = _listed(root, config.path, f"source '{spec}' ({config.path})", storage)
        options = csv_options(config) if config.kind == "csv" else ""
        return Table(config.kind, files, options, storage)
    files = _listed(root, spec, f"'{spec}'", storage)
    kinds = {_SUFFIXES.get(Path(f).suffix.lower()) for f in files}
    if len(kinds) != 1 or None in kinds:
        raise SourceError(
            f"{spec} holds files other than one kind of .parquet or .csv; point at one kind"
        )
    kind = kinds.pop()
    assert kind is not None
    default = SourceConfig(kind=kind, path=spec)
    return Table(kind, files, csv_options(default) if kind == "csv" else "", storage)


def _listed(root: Path, pattern: str, shown: str, storage: Storage) -> tuple[str, ...]:
    remote = "://" in pattern
    files: list[Any] = _remote_files(pattern, storage) if remote else list_files(root, pattern)
    if not files:
        raise SourceError(f"no files match {shown}; give a file, a folder or a glob")
    return tuple(str(f) for f in files)


def _remote_files(url: str, storage: Storage) -> list[str]:
    """The objects a URL names (an object, a prefix or a glob), as URLs, sorted."""
    from keel.data.remote import BUCKETED, _bucket_exists, _filesystem, _guarded, _matches

    fs, path = _filesystem(url, storage)
    protocol = url.split("://", 1)[0]
    try:
        names = _guarded(url, lambda: _matches(fs, path))
        if not names and protocol in BUCKETED:
            _guarded(url, lambda: _bucket_exists(fs, url))
    except ConnectionError as error:
        raise SourceError(str(error)) from None
    return [f"{protocol}://{name.removeprefix('/')}" for name in names]


@contextmanager
def connect(path: str, storage: Storage = None) -> Iterator[Any]:
    """A DuckDB connection that can read ``path``: a remote one through its fsspec
    filesystem (with keel.yaml's ``storage`` options)."""
    import duckdb

    with duckdb.connect() as con:
        if "://" in path:
            from keel.store.artifacts import open_filesystem

            con.register_filesystem(open_filesystem(path, storage)[0])
        yield con


def plan_partitions(table: Table, rows: int, sent: Storage = None) -> list[Partition]:
    """The table's partitions, in file order then row order: concatenated in ``index``
    order they are the table's rows in order. Each carries ``sent`` as its storage
    options when given (what a task on another machine may be sent of them, such as
    ``ArtifactStore.task_storage``), else the table's."""
    cuts: list[tuple[str, int, int | None]] = []
    for path in table.files:
        if table.kind == "csv":
            cuts.append((path, 0, None))
            continue
        total = parquet_rows(path, table.storage)
        cuts.extend((path, start, min(rows, total - start)) for start in range(0, total, rows))
        if total == 0:
            cuts.append((path, 0, 0))
    storage = table.storage if sent is None else sent
    return [
        Partition(i, path, table.kind, start, count, table.options, storage)
        for i, (path, start, count) in enumerate(cuts)
    ]


def parquet_rows(path: str, storage: Storage = None) -> int:
    """A Parquet file's row count, from its footer; a file that is not Parquet is named."""
    import duckdb

    try:
        with connect(path, storage) as con:
            found = con.execute(
                "SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata(?)", [path]
            ).fetchone()
    except duckdb.Error as error:
        raise SourceError(_unreadable(path, "Parquet", error)) from None
    return int(found[0]) if found else 0


def joined_schema(schema: list[list[str]], other: list[list[str]]) -> list[list[str]] | None:
    """Two files' schemas (name, DuckDB type) as one table's: the same columns in the same
    order, a column ``UNTYPED`` in one taking the other's type; None when they differ
    otherwise (a column missing, moved, or of another type)."""
    if [name for name, _ in schema] != [name for name, _ in other]:
        return None
    joined = []
    for (name, mine), (_, theirs) in zip(schema, other, strict=True):
        if UNTYPED not in (mine, theirs) and mine != theirs:
            return None
        joined.append([name, theirs if mine == UNTYPED else mine])
    return joined


def schema_difference(found: list[list[str]], schema: list[list[str]]) -> str:
    """How a file's schema ``found`` differs from the table's ``schema``, for an error:
    each column of another type (a column without a type differs from none) or missing,
    else the columns' order."""
    mine, theirs = {n: k for n, k in found}, {n: k for n, k in schema}
    differ = sorted(
        name
        for name in mine.keys() | theirs.keys()
        if mine.get(name) != theirs.get(name)
        and not (name in mine and name in theirs and UNTYPED in (mine[name], theirs[name]))
    )
    if not differ:
        return f"columns in the order {', '.join(mine)} (not {', '.join(theirs)})"
    return ", ".join(
        f"{n} {mine.get(n, 'missing')} (not {theirs.get(n, 'missing')})" for n in differ
    )


def read_partition(partition: Partition) -> pd.DataFrame:
    """The partition's rows as a pandas frame, in file order."""
    import duckdb

    scan = _scan(partition)
    if partition.rows is not None:
        scan += f" LIMIT {int(partition.rows)} OFFSET {int(partition.start)}"
    try:
        with connect(partition.path, partition.storage) as con:
            con.execute("SET preserve_insertion_order = true; SET enable_progress_bar = false")
            return con.execute(scan, [partition.path]).df()
    except duckdb.Error as error:
        kind = "Parquet" if partition.kind == "parquet" else "CSV"
        raise SourceError(_unreadable(partition.path, kind, error)) from None


def _scan(partition: Partition) -> str:
    if partition.kind == "parquet":
        return "SELECT * FROM read_parquet(?)"
    return f"SELECT * FROM read_csv(?, {partition.options or 'header = true'})"


def _unreadable(path: str, kind: str, error: Exception) -> str:
    lines = str(error).strip().splitlines()
    said = lines[0][:200] if lines else type(error).__name__
    return f"{path} is not a readable {kind} file ({said}); replace or remove it"
