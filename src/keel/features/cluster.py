"""Snapshots and point-in-time training sets computed partition by partition on an engine.

Every feature value belongs to one entity, so the work splits by entity: partition ``p``
of ``n`` holds the entities whose id hashes (DuckDB's ``hash`` of the id text) to ``p``.
Each partition runs the same DuckDB SQL as the local store (``keel.features.sql``) on its
own entities, so the join's semantics (ASOF, maximum age, ties by ingestion order, nulls
and ``<view>__missing``) have one implementation, whichever engine runs it.

- A snapshot: each partition computes the view's rows of its entities from the source's
  data versions; the client puts the parts together in the local store's order and stores
  the one Parquet blob the local store would have stored.
- A training set: for each group of views keyed by the same columns, the labels are split
  by the hash of their key in those columns, and each partition joins its labels to its
  entities' rows of the views' snapshots. The client puts every label row back in place;
  no label row is dropped (a null key joins nothing in whichever partition it lands).

With a local artifact store the workers read the source versions, snapshots and labels by
path: they must see the project's folder and its artifacts (the same machine, or a shared
file system). With an object store (``artifacts: s3://...``) every file a task reads is
a ``keel.data.remote.Blob`` (the store's URL, keel.yaml's storage options, the digest),
the labels included, so workers elsewhere need only reach the store. The labels go to a
scratch store of the join's own (``ArtifactStore.scratch``), removed when the join ends.

``Reporting`` wraps an engine to report partitions done as they finish (the commands'
progress). Nothing is recorded before the last partition is back, so stopping the map
(Ctrl-C) cancels the cluster's tasks and publishes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.data.remote import Blob, readable
from keel.errors import FeatureError
from keel.features.definitions import FeatureView
from keel.features.keys import entity_sql
from keel.features.sql import path_literal, point_in_time_sql, snapshot_sql

if TYPE_CHECKING:
    from keel.compute.engine import Engine
    from keel.schema import ComputeConfig
    from keel.store.artifacts import ArtifactStore

__all__ = [
    "ROW",
    "JoinJob",
    "Reporting",
    "SnapshotJob",
    "join_partition",
    "join_partitions",
    "partition_count",
    "snapshot_partition",
    "snapshot_parts",
    "split_labels",
]

ROW = "_keel_row"
"""The label row's position, carried through the join and used to put rows back."""


def partition_count(rows: int, compute: ComputeConfig) -> int:
    """Enough partitions for ``compute.partition_rows`` each, and at least one per worker."""
    return max(compute.workers, math.ceil(rows / compute.partition_rows), 1)


def partition_sql(expression: str, partitions: int) -> str:
    """The partition (0 to ``partitions`` - 1) of an entity id; a null id is in 0."""
    return f"coalesce(hash({expression}) % {partitions}, 0)"


class Reporting:
    """An engine that calls ``report(what, done, total)`` as partitions finish; ``what``
    says which job (``weather snapshot``, ``training set join``). The engine itself is
    untouched: closing the map early still cancels the work not done."""

    def __init__(self, engine: Engine, report: Callable[[str, int, int], None]) -> None:
        self.engine = engine
        self.report = report
        self.name = engine.name

    def map(
        self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any]
    ) -> Generator[tuple[int, Any], None, None]:
        is_snapshot = isinstance(shared, SnapshotJob)
        what = f"{shared.view.name} snapshot" if is_snapshot else "training set join"
        self.report(what, 0, len(items))
        for done, (position, result) in enumerate(self.engine.map(fn, shared, items), 1):
            self.report(what, done, len(items))
            yield position, result

    def held(
        self, fetch: Callable[[Any], Any], items: Sequence[Any]
    ) -> AbstractContextManager[list[Any]]:
        return self.engine.held(fetch, items)

    def close(self) -> None:
        self.engine.close()


# -- snapshots -------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotJob:
    """What every partition of one view's snapshot needs (sent to each worker once)."""

    view: FeatureView
    files: tuple[str | Blob, ...]  # the source's data versions, oldest first
    until: datetime
    partitions: int


def snapshot_partition(job: SnapshotJob, partition: int) -> Any:
    """The view's rows (as an Arrow table) of the entities in ``partition``."""
    import duckdb

    with _readable(job.files) as files, _duckdb() as con:
        _source(con, files)
        entity = entity_sql(job.view.keys)
        con.execute(
            "CREATE VIEW part AS SELECT * FROM src "
            f"WHERE {partition_sql(entity, job.partitions)} = {partition}"
        )
        try:
            return _arrow(con, snapshot_sql(job.view, "part", job.until))
        except duckdb.Error as error:  # bad columns or SQL in the definitions
            raise FeatureError(
                f"feature view '{job.view.name}' cannot be computed: {error}"
            ) from None


def snapshot_parts(engine: Engine, job: SnapshotJob, out: Path) -> int:
    """Compute every partition on ``engine`` and write the whole snapshot to ``out`` in the
    local store's order (entity, then time); returns its row count."""
    parts: list[Any] = [None] * job.partitions
    for position, table in engine.map(snapshot_partition, job, list(range(job.partitions))):
        parts[position] = table
    with _duckdb() as con:
        names = []
        for i, table in enumerate(parts):
            con.register(f"p{i}", table)
            names.append(f"SELECT * FROM p{i}")
        union = " UNION ALL ".join(names)
        con.execute(
            f"COPY ({union} ORDER BY entity_id, feature_ts) TO {path_literal(out)} (FORMAT parquet)"
        )
    return sum(int(table.num_rows) for table in parts)


def _source(con: Any, files: Sequence[str]) -> None:
    """The source's versions as one table ``src``, each row with its ingestion order
    (the same ``_keel_seq`` the local store computes)."""
    parts = [
        f"SELECT *, {ordinal} * 10000000000 + file_row_number AS _keel_seq "
        f"FROM read_parquet({path_literal(path)}, file_row_number = true)"
        for ordinal, path in enumerate(files)
    ]
    con.execute(f"CREATE VIEW src AS {' UNION ALL BY NAME '.join(parts)}")


# -- training sets ---------------------------------------------------------------------


@dataclass(frozen=True)
class JoinJob:
    """One group of views keyed by the same columns, with their snapshots' paths."""

    views: tuple[tuple[FeatureView, str | Blob], ...]
    timestamp: str
    partitions: int


def split_labels(labels: Any, jobs: Sequence[JoinJob], folder: Path) -> list[tuple[int, int, str]]:
    """Write the label rows (with ``ROW``) of each group's partitions under ``folder``, one
    Parquet folder per (group, partition) that has rows; ``(group, partition, folder)``
    for each. The workers read them there: labels in the task graph would pass through
    the scheduler."""
    items = []
    with _duckdb() as con:
        con.register("labels", labels)
        for g, job in enumerate(jobs):
            part = partition_sql(entity_sql(job.views[0][0].keys), job.partitions)
            out = folder / f"group-{g}"
            con.execute(
                f"COPY (SELECT *, {part} AS _keel_part FROM labels) TO {path_literal(out)} "
                "(FORMAT parquet, PARTITION_BY (_keel_part))"
            )
            for p in range(job.partitions):  # a partition without labels has no folder
                if (out / f"_keel_part={p}").is_dir():
                    items.append((g, p, str(out / f"_keel_part={p}")))
    return items


def join_partition(job: JoinJob, partition: int, labels: str | tuple[Blob, ...]) -> Any:
    """The views' columns for the labels of ``partition`` (Arrow), with ``ROW`` beside;
    ``labels`` is the folder ``split_labels`` wrote them to, or their files' blobs."""
    stored = labels if isinstance(labels, tuple) else ()
    snapshots = [where for _, where in job.views]
    with _readable((*snapshots, *stored)) as paths, _duckdb() as con:
        if isinstance(labels, str):
            files = path_literal(Path(labels) / "*.parquet")
        else:
            files = "[" + ", ".join(path_literal(p) for p in paths[len(snapshots) :]) + "]"
        con.execute(
            "CREATE TABLE labels AS SELECT * FROM "
            f"read_parquet({files}, hive_partitioning = false) ORDER BY {ROW}"
        )
        joins = []
        mine = partition_sql("entity_id", job.partitions)
        views = [view for view, _ in job.views]
        for i, (view, path) in enumerate(zip(views, paths[: len(views)], strict=True)):
            con.execute(
                f"CREATE VIEW s{i} AS SELECT * FROM read_parquet({path_literal(path)}) "
                f"WHERE {mine} = {partition}"
            )
            joins.append((view, f"s{i}"))
        table = _arrow(con, point_in_time_sql("labels", job.timestamp, joins))
        rows = _arrow(con, f"SELECT {ROW} FROM labels ORDER BY {ROW}")
    # point_in_time_sql answers in ROW order
    return table.append_column(ROW, rows.column(0))


def join_partitions(
    engine: Engine,
    labels: Any,
    jobs: Sequence[JoinJob],
    folder: Path,
    artifacts: ArtifactStore | None = None,
) -> Any:
    """Every group's columns for every label row, in label order (one pandas frame, with
    the views' columns in the jobs' order); ``folder`` holds the labels for the workers,
    or, with a remote ``artifacts`` store, their files are put there as blobs."""
    import numpy as np

    labels = labels.assign(**{ROW: np.arange(len(labels))})
    items: list[tuple[int, int, Any]] = list(split_labels(labels, jobs, folder))
    results: list[list[Any]] = [[] for _ in jobs]
    with _label_store(artifacts) as scratch:
        if scratch is not None:
            items = [(g, p, _stored_labels(scratch, Path(part))) for g, p, part in items]
        for position, table in engine.map(_join_item, jobs, items):
            results[items[position][0]].append(table)
    with _duckdb() as con:
        columns = []
        for g, tables in enumerate(results):
            for i, table in enumerate(tables):
                con.register(f"g{g}_{i}", table)
            union = " UNION ALL ".join(f"SELECT * FROM g{g}_{i}" for i in range(len(tables)))
            con.execute(f"CREATE VIEW g{g} AS {union}")
            columns.append(f"g{g}")
        # the groups' rows side by side, by label row
        select = ", ".join(f"{name}.* EXCLUDE ({ROW})" for name in columns)
        joined = " ".join(f"JOIN {name} USING ({ROW})" for name in columns[1:])
        sql = f"SELECT {select} FROM {columns[0]} {joined} ORDER BY {columns[0]}.{ROW}"
        return con.execute(sql).df()


@contextmanager
def _label_store(artifacts: ArtifactStore | None) -> Iterator[ArtifactStore | None]:
    """Where the label files go for the workers: with a remote artifact store, a scratch
    store of this join's own in it, removed with them when the join ends (done, failed
    or cancelled); with a local one, nowhere (the workers read the folder)."""
    if artifacts is None or artifacts.is_local:
        yield None
        return
    with artifacts.scratch() as scratch:
        yield scratch


def _stored_labels(artifacts: ArtifactStore, folder: Path) -> tuple[Blob, ...]:
    """A partition's label files put in the (remote, scratch) artifact store, as blobs."""
    from keel.data.remote import where_to_read

    files = sorted(folder.glob("*.parquet"))
    found = [where_to_read(artifacts, artifacts.put_file(file)) for file in files]
    return tuple(blob for blob in found if isinstance(blob, Blob))


@contextmanager
def _readable(files: Sequence[str | Blob]) -> Iterator[list[str]]:
    """Local paths for ``files``: paths as they are, blobs fetched to this worker."""
    with ExitStack() as stack:
        yield [stack.enter_context(readable(where)) for where in files]


def _join_item(jobs: Sequence[JoinJob], item: tuple[int, int, Any]) -> Any:
    group, partition, labels = item
    return join_partition(jobs[group], partition, labels)


def _arrow(con: Any, query: str) -> Any:
    """A query's whole result as an Arrow table (DuckDB 2 renamed the method)."""
    relation = con.sql(query)
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    return fetch()


@contextmanager
def _duckdb() -> Iterator[Any]:
    import duckdb

    con = duckdb.connect()
    try:
        # the command shows its own progress; DuckDB's bar would write over it
        con.execute("SET enable_progress_bar = false")
        yield con
    finally:
        con.close()
