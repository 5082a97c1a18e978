"""A source too big for one batch: a folder or glob of Parquet files, one partition each.

Its version is a manifest: the schema, and each partition's path, sha256, size and row
count; the manifest's own sha256 names the version, so the same files give the same
version and any changed file gives another. Every partition must have the schema of the
first (a file that differs is named, with the columns that differ), and a file that is
not Parquet is named too. A column without a type (Arrow's ``null``: pandas writes an
object column with no value so) holds only nulls, so it takes the other files' type:
the table's schema has it, and each partition's task reads the column as that type.

Each partition is checked on its own, on whatever engine runs it (its DuckDB on the
worker's threads, ``task_connection``), with the source's row checks
(``keel.data.validation.validate``): findings name the partition, and each example row
carries ``_row``, its row number in that file. Each partition also returns a mergeable
summary of its columns (``keel.data.sketches``); the merged summaries are the table's
profile, and the checks a profile decides (maximum null rate, freshness, statistics
against a reference) are judged on it once, for the whole table.

Checks that need every partition at once stay exact:
- uniqueness of the key and of ``unique: true`` columns, as a shuffle on the engine: the
  task that checks a file also cuts its non-null values (with their row numbers) into
  buckets by a hash of the value, from the table it has loaded; one task per bucket finds
  the values held by more than one file, and only those rows come back (their count, and
  the first ones as examples), so the client's memory does not grow with the table. A
  file whose result is known already (``keel.data.manifests`` keeps them between runs)
  has only its key columns read (``Part.check`` False), so the results kept hold no key
  values (``shuffle_parts``, ``unique_across``);
- referential integrity: the referenced values are sent to every worker once, and each
  partition is semi-joined with them where it lies (its failing rows named as usual);
- ordering: within a file the partition's own check counts rows that go backwards; at
  each file boundary, the first row of every group is compared with the last row of that
  group in the files before it.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from keel.data.model import Finding, Profile
from keel.data.partitions import UNTYPED, Table, joined_schema, schema_difference
from keel.data.sketches import ColumnSketch, merge_all, to_profile
from keel.data.sources import file_lineage
from keel.errors import SourceError
from keel.schema import ColumnCheck, OrderedCheck, SourceConfig

if TYPE_CHECKING:
    import pandas as pd

    from keel.compute.engine import ShuffleEngine

__all__ = [
    "ROW",
    "KeyClashes",
    "KeyJob",
    "Part",
    "PartitionCheck",
    "PartitionedReport",
    "Shared",
    "check_part",
    "check_partition",
    "check_partitioned",
    "footer",
    "key_buckets",
    "key_duplicates",
    "key_job",
    "manifest",
    "merge_partitions",
    "per_partition",
    "shuffle_parts",
    "store_manifest",
    "table_schema",
    "typed",
    "unique_across",
    "unique_findings",
    "unique_sets",
]

ROW = "_row"
"""The column each example row carries: its row number (from 0) within its file."""

_EXAMPLES = 20
_BUCKETS = 32
"""At most this many buckets in the key shuffle (one per file below that) ..."""
_BUCKET_ROWS = 4_000_000
"""... unless the table is bigger: about this many key rows per bucket at most."""
_PART = "keel_part"


@dataclass(frozen=True)
class PartitionCheck:
    """What one partition's checks found; for the merge, its columns' mergeable summaries
    and each group's first and last ordered value (never its key values: the key shuffle
    reads those)."""

    path: str
    rows: int
    findings: tuple[Finding, ...]
    sketch: tuple[ColumnSketch, ...] = ()
    edges: pd.DataFrame | None = None


@dataclass(frozen=True)
class KeyJob:
    """What every task of the key shuffle needs: the column sets that must be unique
    (name -> columns), the number of buckets, and how many rows each bucket returns
    besides its count (None: every clashing row)."""

    sets: dict[str, tuple[str, ...]]
    buckets: int
    limit: int | None = _EXAMPLES


@dataclass(frozen=True)
class Shared:
    """What every partition's check needs, sent to each worker once: the source, its
    checks, the clock, the referenced sources' values (``source.column`` -> values), and
    the key shuffle's job (``key_job``; no sets: nothing to shuffle), and the table's
    schema (name, DuckDB type), which types a partition's columns that have none."""

    source: str
    config: SourceConfig
    now: datetime
    lookups: dict[str, tuple[str, ...]]
    unique: KeyJob = KeyJob({}, 0)
    schema: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Part:
    """One file as its task sees it: where to read it (a path, or what the caller's task
    makes one of), how findings name it, its position in the table, and whether its checks
    run (False: its result is known, and only its key columns are read)."""

    where: Any
    name: str
    index: int
    check: bool = True


@dataclass(frozen=True)
class PartitionedReport:
    """The manifest, each partition's failing findings, and the cross-partition checks."""

    manifest: dict[str, Any]
    partitions: tuple[PartitionCheck, ...]
    merged: tuple[Finding, ...]
    profile: Profile | None = None

    @property
    def passed(self) -> bool:
        found = [f for p in self.partitions for f in p.findings] + list(self.merged)
        return not any(finding.blocking for finding in found)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.manifest["sha256"],
            "manifest": self.manifest,
            "passed": self.passed,
            "partitions": [
                {"path": p.path, "rows": p.rows, "findings": [f.__dict__ for f in p.findings]}
                for p in self.partitions
            ],
            "merged": [f.__dict__ for f in self.merged],
            "profile": None if self.profile is None else self.profile.to_dict(),
        }


def manifest(table: Table) -> dict[str, Any]:
    """The version of ``table`` (Parquet files) as a manifest; a file whose schema differs
    from the first's, or that is not Parquet, is refused by name."""
    return _hashed(table, _footers(table))


def _footers(table: Table) -> list[tuple[list[list[str]], int]]:
    """Each file's schema and row count (its footer: cheap), the schemas joined into one
    (``table_schema``); a file whose schema differs, or that is not Parquet, is refused by
    name."""
    if table.kind != "parquet":
        raise SourceError("a partitioned source is Parquet files; convert the CSV files first")
    if any("://" in path for path in table.files):
        raise SourceError(
            "keel data partitions reads local files; for s3:// give the source "
            "partitioned: true and run keel ingest"
        )
    import duckdb

    with duckdb.connect() as con:  # one connection: opening one costs more than a footer
        found = [footer(path, con) for path in table.files]
    table_schema(table.files, [schema for schema, _ in found])
    return found


def table_schema(files: Sequence[str], schemas: list[list[list[str]]]) -> list[list[str]]:
    """The files' schemas as the table's (``joined_schema``: a column without a type takes
    the others'); a file whose schema does not join the ones before it is refused by name."""
    schema = schemas[0] if schemas else []
    for path, found in zip(files, schemas, strict=True):
        joined = joined_schema(schema, found)
        if joined is None:
            shown = schema_difference(found, schema)
            raise SourceError(
                f"{path} has another schema than {files[0]}: {shown}; "
                "give all partitions one schema"
            )
        schema = joined
    return schema


def _hashed(table: Table, read: list[tuple[list[list[str]], int]]) -> dict[str, Any]:
    """The manifest of ``table`` from its ``_footers``: each file's digest (the whole file
    read) and rows; its own digest names the version."""
    parts = [
        {**file_lineage(Path(path), path), "rows": rows}
        for path, (_, rows) in zip(table.files, read, strict=True)
    ]
    body = {
        "schema": table_schema(table.files, [schema for schema, _ in read]),
        "partitions": parts,
    }
    digest = hashlib.sha256(_canonical(body)).hexdigest()
    return {**body, "sha256": digest, "rows": sum(p["rows"] for p in parts)}


def store_manifest(artifacts: Any, found: dict[str, Any]) -> str:
    """Keep the manifest in the artifact store, under its own digest (the version id)."""
    return str(artifacts.put_bytes(_canonical({k: found[k] for k in ("schema", "partitions")})))


def _canonical(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def footer(path: str, con: Any = None) -> tuple[list[list[str]], int]:
    """A Parquet file's schema (name, DuckDB type) and row count, from its footer, read on
    ``con`` (a DuckDB connection) or on a new one."""
    import duckdb

    try:
        if con is None:
            with duckdb.connect() as own:
                return footer(path, own)
        found = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [path]).fetchall()
        counted = con.execute(
            "SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata(?)", [path]
        ).fetchone()
    except duckdb.Error as error:
        said = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        message = f"{path} is not a readable Parquet file ({said}); replace or remove it"
        raise SourceError(message) from None
    return [[str(row[0]), str(row[1])] for row in found], int(counted[0]) if counted else 0


def check_partitioned(
    engine: ShuffleEngine,
    source: str,
    config: SourceConfig,
    table: Table,
    now: datetime,
    *,
    lookups: dict[str, tuple[str, ...]] | None = None,
    reference: tuple[str, Profile] | None = None,
) -> PartitionedReport:
    """Check every partition of ``table`` on ``engine``, merge their summaries into the
    table's profile, and run the checks that need the whole table on the merge.

    ``lookups`` holds the values each ``references:`` check points at (``source.column``
    -> values); ``reference`` the version and profile statistics are compared with."""
    from concurrent.futures import ThreadPoolExecutor

    read = _footers(table)
    job = key_job(config, len(table.files), sum(rows for _, rows in read))
    schema = table_schema(table.files, [schema for schema, _ in read])
    shared = Shared(source, per_partition(config), now, dict(lookups or {}), job, typed(schema))
    parts = [Part(path, path, index) for index, path in enumerate(table.files)]
    clashes = KeyClashes(job, table.files)
    with ThreadPoolExecutor(1, thread_name_prefix="keel-manifest") as pool:
        hashing = pool.submit(_hashed, table, read)  # while the engine checks the files
        done = dict(shuffle_parts(engine, shared, parts, check_part, clashes))
        found = hashing.result()
    checked = tuple(done[i] for i in range(len(parts)))
    return merge_partitions(config, found, checked, now, reference, clashes.findings(config))


def merge_partitions(
    config: SourceConfig,
    found: dict[str, Any],
    parts: tuple[PartitionCheck, ...],
    now: datetime,
    reference: tuple[str, Profile] | None = None,
    keys: list[Finding] | None = None,
) -> PartitionedReport:
    """The table's report: the partitions' summaries merged into its profile, and the
    checks that need the whole table run on the merge. ``keys``: the key shuffle's
    findings (``unique_findings``; None: the keys were not checked)."""
    profile = to_profile(found["rows"], merge_all([p.sketch for p in parts if p.sketch]))
    merged = _merged(config, parts, profile, now, reference, keys)
    return PartitionedReport(found, parts, merged, profile)


def _merged(
    config: SourceConfig,
    parts: tuple[PartitionCheck, ...],
    profile: Profile,
    now: datetime,
    reference: tuple[str, Profile] | None,
    keys: list[Finding] | None,
) -> tuple[Finding, ...]:
    """The findings over the whole table: profile checks on the merged profile, the key
    across partitions, order across file boundaries, statistics against a reference."""
    from keel.data.stats import compare
    from keel.data.validation import profile_findings

    found = profile_findings(config, profile, now)
    found += keys or []
    if config.checks.ordered is not None and all(p.edges is not None for p in parts):
        found.append(across_boundaries(config.checks.ordered, parts))
    stats = config.checks.reference
    if stats is not None and reference is not None:
        found += compare(profile, reference[1], stats)
    return tuple(found)


def per_partition(config: SourceConfig) -> SourceConfig:
    """The checks each partition runs: the row checks, with ``_row`` declared (so it is
    never an undeclared column); the checks judged on the merged profile are left out."""
    checks = config.checks.model_copy(update={"reference": None})
    if config.checks.columns:
        columns = {
            name: spec.model_copy(update={"max_null_rate": None, "freshness": None})
            for name, spec in config.checks.columns.items()
        }
        checks = checks.model_copy(update={"columns": {**columns, ROW: ColumnCheck()}})
    return config.model_copy(update={"checks": checks})


def check_partition(shared: Shared, file: tuple[str, str]) -> PartitionCheck:
    """One file's checks (runs on an engine's worker): failing findings named by the file
    (``file`` is where to read it and how to name it), examples with their ``_row``, and
    what the merge needs (summary, edges)."""
    local, path = file
    with task_connection() as con:
        return _checked(shared, _loaded(con, local, shared.schema), path)


def check_part(shared: Shared, part: Part) -> tuple[PartitionCheck | None, list[dict[str, Any]]]:
    """One file's task in the shuffle (runs on an engine's worker): its checks, as
    ``check_partition`` (none when ``part.check`` is False), and its key values cut into
    the shuffle's buckets (``_cut``), from one read of the file."""
    with task_connection() as con:
        if not part.check:
            return None, _file_pieces(con, shared.unique, part.where, part.index)
        batch = _loaded(con, part.where, shared.schema)
        checked = _checked(shared, batch, part.name)
        held = tuple(batch.schema)
        return checked, _cut(con, shared.unique, _TABLE_KEYS, {}, held, part.index)


def _loaded(con: Any, local: str, schema: tuple[tuple[str, str], ...] = ()) -> Any:
    """The file at ``local`` as the task's batch, each row with its ``_row``; a column
    without a type (all null) gets the table's type from ``schema``."""
    from keel.data.batch import TABLE, Batch, quote

    scan = "read_parquet(?, file_row_number = true)"
    select = f"SELECT * EXCLUDE (file_row_number), file_row_number AS {ROW} FROM {scan}"
    con.execute(f"CREATE TABLE {TABLE} AS {select}", [local])
    batch = Batch(con)
    types = dict(schema)
    for name, kind in batch.schema.items():
        if kind == UNTYPED and types.get(name, UNTYPED) != UNTYPED:
            con.execute(f"ALTER TABLE {TABLE} ALTER {quote(name)} SET DATA TYPE {types[name]}")
    return batch


def typed(schema: list[list[str]]) -> tuple[tuple[str, str], ...]:
    """A manifest's schema as ``Shared.schema`` holds it."""
    return tuple((str(name), str(kind)) for name, kind in schema)


def _checked(shared: Shared, batch: Any, path: str) -> PartitionCheck:
    """The checks of ``shared`` over ``batch``, the file named ``path``."""
    from keel.data.profiling import profile
    from keel.data.sketches import sketch_batch
    from keel.data.validation import Context, validate

    config = shared.config
    lookups = _load_lookups(batch, shared.lookups)
    profiled = profile(batch)
    report = validate(batch, shared.source, config, profiled, Context(shared.now, None, lookups))
    sketch = sketch_batch(batch, profiled, skip=(ROW,))
    edges = _edges(batch, config.checks.ordered)
    rows = batch.rows
    failing = tuple(_named(f, path) for f in report.findings if f.status == "fail")
    if rows == 0:
        message = f"{path}: the partition has no rows"
        failing += (Finding("partition:empty", "empty", "warn", "fail", message, violations=1),)
    return PartitionCheck(path, rows, failing, sketch, edges)


@contextmanager
def task_connection() -> Iterator[Any]:
    """A DuckDB connection for one task: a cursor on this process's database, in a schema
    of its own (dropped afterwards, with every table made in it), so tasks running side by
    side on one worker never see each other's tables. A new database costs about 20 ms of
    CPU to open and more to close, a cursor well under 1 ms. On a Dask worker the database
    runs on the worker's threads (``worker_threads``): a one-thread worker uses one core."""
    from keel.compute.engine import worker_threads

    cursor = _database(worker_threads()).cursor()
    schema = f"keel_task_{uuid.uuid4().hex}"
    try:
        cursor.execute(f"CREATE SCHEMA {schema}; USE {schema}")
        yield cursor
    finally:
        try:
            cursor.execute(f"USE main; DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            cursor.close()


@functools.cache
def _database(threads: int | None) -> Any:
    """This process's in-memory DuckDB database for tasks, made on first use."""
    import duckdb

    return duckdb.connect(config={} if threads is None else {"threads": threads})


def _load_lookups(batch: Any, values: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Each referenced source's values as a table beside the partition (a broadcast
    semi-join: the partition's rows are matched where they lie)."""
    return {
        to: values_table(batch.con, f"keel_lookup_{index}", listed)
        for index, (to, listed) in enumerate(sorted(values.items()))
    }


def _edges(batch: Any, ordered: OrderedCheck | None) -> pd.DataFrame | None:
    """Per group, the first ordered value (and its row) and the last, in file order
    (``arg_min_null``: the value at the lowest row even when it is null, as ``first``
    in row order, without sorting)."""
    from keel.data.batch import TABLE, quote

    if ordered is None or not all(c in batch.schema for c in (ordered.by, ordered.within) if c):
        return None
    by = quote(ordered.by)
    group = quote(ordered.within) if ordered.within else "NULL"
    return batch.con.execute(
        f"SELECT {group} AS grp, arg_min_null({by}, {ROW}) AS first, min({ROW}) AS row, "
        f"arg_max_null({by}, {ROW}) AS last FROM {TABLE} GROUP BY ALL"
    ).df()


def across_boundaries(ordered: OrderedCheck, parts: tuple[PartitionCheck, ...]) -> Finding:
    """``ordered:<by>.across_partitions``: rows that go backwards from the last row of
    their group in the files before them (the first row of each group in each file; the
    rows after it are the file's own check). Exact: every group's edges are compared."""
    within = f" within {ordered.within}" if ordered.within else ""
    name = f"ordered:{ordered.by}{within}.across_partitions"
    last: dict[Any, Any] = {}
    backwards: list[dict[str, Any]] = []
    for part in parts:
        edges = part.edges
        if edges is None or edges.empty:
            continue
        for group, first, row, final in edges.itertuples(index=False, name=None):
            group = None if _missing(group) else group
            before = last.get(group)
            if not _missing(before) and not _missing(first) and first < before:
                backwards.append(
                    {"partition": part.path, ROW: int(row), ordered.by: _shown(first),
                     f"previous_{ordered.by}": _shown(before)}
                )  # fmt: skip
            last[group] = final
    if not backwards:
        return Finding(name, "ordered", ordered.severity, "pass", "ok", ordered.by, rows=0)
    message = f"{len(backwards)} rows: {ordered.by} goes backwards across a file boundary"
    return Finding(
        name, "ordered", ordered.severity, "fail", message, ordered.by, len(backwards),
        tuple(backwards[:_EXAMPLES]), rows=len(backwards),
    )  # fmt: skip


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


def _shown(value: Any) -> Any:
    from keel.data.batch import jsonable

    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    elif hasattr(value, "item"):  # a NumPy scalar
        value = value.item()
    return jsonable(value)


def _named(finding: Finding, path: str) -> Finding:
    return replace(finding, message=f"{path}: {finding.message}")


def unique_sets(config: SourceConfig) -> dict[str, tuple[str, ...]]:
    """What must be unique across the whole table: the key (named as in its checks), and
    each column declared ``unique: true``."""
    sets = {config.key_name: config.keys} if config.key_name else {}
    for name, spec in config.checks.columns.items():
        if spec.unique and name not in sets and name != ROW:
            sets[name] = (name,)
    return sets


def values_table(con: Any, table: str, values: tuple[str, ...]) -> str:
    """``values`` as a one-column table ``table`` (column ``value``) in ``con``."""
    con.execute(
        f"CREATE OR REPLACE TABLE {table} AS SELECT unnest($1::VARCHAR[]) AS value", [list(values)]
    )
    return table


def key_job(config: SourceConfig, files: int, rows: int, limit: int | None = _EXAMPLES) -> KeyJob:
    """The key shuffle of a table of ``files`` files and ``rows`` rows: one bucket per
    file up to 32, more when a bucket would hold more than about 4M key rows; no bucket
    when nothing must be unique."""
    sets = unique_sets(config)
    if not sets or not files:
        return KeyJob({}, 0, limit)
    return KeyJob(sets, max(min(files, _BUCKETS), -(-rows // _BUCKET_ROWS)), limit)


class KeyClashes:
    """The key shuffle's answer, gathered as its buckets are reduced: per unique set, the
    rows whose value another file also holds (their count, and the first ``job.limit`` by
    value, file and row). ``names``: the files' names by position."""

    def __init__(self, job: KeyJob, names: Sequence[str]) -> None:
        self.job = job
        self.names = list(names)
        self.counts: dict[str, int] = {}
        self.firsts: dict[str, pd.DataFrame] = {}

    def add(self, found: dict[str, tuple[int, pd.DataFrame]]) -> None:
        """One bucket's reduction (``key_duplicates``)."""
        for name, (count, rows) in found.items():
            self.counts[name] = self.counts.get(name, 0) + count
            self.firsts[name] = _first(self.job, name, [self.firsts.get(name), rows])

    def found(self) -> dict[str, tuple[int, pd.DataFrame]]:
        """Per set, the count and the first rows, each with its ``partition`` (the file's
        name) and ``_row``."""
        return {n: (self.counts[n], _with_names(self.firsts[n], self.names)) for n in self.counts}

    def findings(self, config: SourceConfig) -> list[Finding]:
        """``<set>.unique_across_partitions`` for each unique set (``unique_findings``)."""
        return unique_findings(config, self.found())


def shuffle_parts(
    engine: ShuffleEngine,
    shared: Shared,
    parts: list[Part],
    task: Callable[[Shared, Part], tuple[PartitionCheck | None, list[dict[str, Any]]]],
    clashes: KeyClashes,
) -> Iterator[tuple[int, PartitionCheck]]:
    """``task`` (``check_part``, or a caller's task around it) over ``parts`` on
    ``engine`` as one shuffle: ``(position, result)`` of each checked part as it arrives;
    the key buckets' reductions go into ``clashes``."""
    shuffled = engine.shuffle(task, shared, parts, shared.unique.buckets, _duplicates)
    with closing(shuffled) as done:
        for kind, index, value in done:
            if kind == "bucket":
                clashes.add(value)
            elif value is not None:
                yield index, value


def unique_across(
    engine: ShuffleEngine,
    config: SourceConfig,
    files: list[tuple[str, str]],
    limit: int | None = _EXAMPLES,
) -> dict[str, tuple[int, pd.DataFrame]]:
    """For each unique set (``unique_sets``), the rows whose value another file also holds:
    their count and the first ``limit`` of them (None: all), ordered by value, file and
    row, with their ``partition`` (the file's name) and ``_row``. Exact, and shuffled on
    ``engine`` (``files``: (where to read, how to name) pairs), reading the key columns
    only: only clashing rows return."""
    job = key_job(config, len(files), 0, limit)
    if not job.buckets:
        return {}
    clashes = KeyClashes(job, [name for _, name in files])
    items = [(index, local) for index, (local, _) in enumerate(files)]
    with closing(engine.shuffle(key_buckets, job, items, job.buckets, key_duplicates)) as done:
        for kind, _, found in done:
            if kind == "bucket":
                clashes.add(found)
    return clashes.found()


def _first(job: KeyJob, name: str, frames: list[pd.DataFrame | None]) -> pd.DataFrame:
    """The first ``job.limit`` rows of ``frames`` together, by value, file and row."""
    import pandas as pd

    kept = [f for f in frames if f is not None and not f.empty]
    if not kept:
        return next(f for f in frames if f is not None)
    joined = kept[0] if len(kept) == 1 else pd.concat(kept, ignore_index=True)
    ordered = joined.sort_values([*job.sets[name], _PART, ROW], ignore_index=True)
    return ordered if job.limit is None else ordered.head(job.limit)


def _with_names(rows: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    named = rows.assign(partition=[names[int(i)] for i in rows[_PART]])
    return named.drop(columns=[_PART])


_TABLE_KEYS = "SELECT * FROM batch"
"""The key shuffle's rows of a file already loaded by its task (``_row`` included)."""
_FILE_KEYS = "SELECT *, file_row_number AS _row FROM read_parquet($path, file_row_number = true)"
"""The key shuffle's rows of a file read for its keys only."""


def key_buckets(job: KeyJob, file: tuple[int, str]) -> tuple[None, list[dict[str, Any]]]:
    """One file's non-null values of each unique set, with their row numbers, cut into
    ``job.buckets`` pieces (``_cut``; runs on an engine's worker, and only the key
    columns are read); no result of its own."""
    index, local = file
    with task_connection() as con:
        return None, _file_pieces(con, job, local, index)


def _file_pieces(con: Any, job: KeyJob, local: str, index: int) -> list[dict[str, Any]]:
    if not job.buckets:
        return []
    scan = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [local]).fetchall()
    held = tuple(str(row[0]) for row in scan)
    return _cut(con, job, _FILE_KEYS, {"path": local}, held, index)


def _cut(
    con: Any,
    job: KeyJob,
    rows: str,
    params: dict[str, Any],
    held: tuple[str, ...],
    index: int,
) -> list[dict[str, Any]]:
    """The non-null values of each unique set among ``rows`` (a query on ``con`` with
    ``params``, whose columns ``held`` include ``_row``), with their row numbers and the
    file's ``index``, cut into ``job.buckets`` Arrow tables by a hash of the value."""
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    from keel.data.batch import key_present, quote

    pieces: list[dict[str, Any]] = [{} for _ in range(job.buckets)]
    sets = {n: cols for n, cols in job.sets.items() if all(c in held for c in cols)}
    for name, columns in sets.items():
        listed = ", ".join(quote(c) for c in columns)
        table = con.sql(
            f"SELECT {listed}, {ROW}, {int(index)}::INTEGER AS {_PART}, "
            f"(hash({listed}) % {int(job.buckets)})::INTEGER AS keel_bucket "
            f"FROM ({rows}) WHERE {key_present(columns)}",
            params=params,
        ).to_arrow_table()
        bucket_of = table.column("keel_bucket")
        table = table.drop_columns(["keel_bucket"])
        for bucket in range(job.buckets):  # a filter copies: a piece holds its rows only
            pieces[bucket][name] = table.filter(pc.equal(bucket_of, bucket))
    return pieces


def _duplicates(shared: Shared, pieces: list[dict[str, Any]]) -> dict[str, tuple[int, Any]]:
    return key_duplicates(shared.unique, pieces)


def key_duplicates(
    job: KeyJob, pieces: list[dict[str, Any]]
) -> dict[str, tuple[int, pd.DataFrame]]:
    """In one bucket (every file's piece of it), each unique set's rows whose value more
    than one file holds: their count and the first ``job.limit`` (runs on a worker)."""
    import pyarrow as pa

    from keel.data.batch import quote

    found = {}
    for name, columns in job.sets.items():
        tables = [p[name] for p in pieces if name in p]
        if not tables:
            continue
        every = pa.concat_tables(tables, promote_options="default")  # a null column: typed
        listed = ", ".join(quote(c) for c in columns)
        limit = "" if job.limit is None else f" LIMIT {int(job.limit)}"
        with task_connection() as con:
            con.register("every", every)
            con.execute(  # the values held by more than one file: few, in a valid table
                f"CREATE TABLE clash AS SELECT {listed} FROM every GROUP BY ALL "
                f"HAVING min({_PART}) <> max({_PART})"
            )
            counted = con.execute(f"SELECT count(*) FROM every SEMI JOIN clash USING ({listed})")
            total = int((counted.fetchone() or (0,))[0])
            clashing = con.execute(
                f"SELECT every.* FROM every SEMI JOIN clash USING ({listed}) "
                f"ORDER BY {listed}, {_PART}, {ROW}{limit}"
            ).df()
        found[name] = (total, clashing)
    return found


def unique_findings(
    config: SourceConfig, found: dict[str, tuple[int, pd.DataFrame]]
) -> list[Finding]:
    """``<set>.unique_across_partitions`` for each unique set, from ``unique_across``: every
    row whose value another partition also holds, the first 20 as examples."""
    findings = []
    for shown, columns in unique_sets(config).items():
        name = f"{shown}.unique_across_partitions"
        severity = config.checks.columns.get(columns[0], ColumnCheck()).severity
        count, rows = found.get(shown, (0, None))
        if not count or rows is None:
            findings.append(Finding(name, "unique", severity, "pass", "ok", shown, rows=0))
            continue
        examples = tuple(rows.head(_EXAMPLES).to_dict("records"))
        message = f"{count} rows hold a {shown} that another partition also holds"
        findings.append(
            Finding(name, "unique", severity, "fail", message, shown, count, examples, rows=count)
        )
    return findings
