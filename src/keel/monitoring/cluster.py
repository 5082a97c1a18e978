"""Drift of a window too big for one process: sketches per partition on an engine, merged.

A window given as partitions (``keel.data.partitions``: files, or row ranges of files) is
counted partition by partition on the reference's layout; the counts add up to the
sketch of the whole window, exactly as ``compare_frame`` would count it. What
``compare_frame`` needs beyond the sketch comes back by row position, so the report is the
one the local engine gives on the same rows:

- a window of at most ``settings.exact_rows`` rows is small: its raw columns come back
  whole (the exact KS test needs them);
- the MMD row sample is drawn as ``compare_frame`` draws it (a seeded permutation of the
  window's row positions), and each partition returns the sampled rows it holds.

Only the sketches and at most ``mmd_sample`` rows cross the network for a big window.

A logged window (``keel drift``, the monitoring cycle) is the same computation with one
task per log segment (``log_window_drift``): each task reads its segment's rows in the
window as ``PredictionLog.read`` would (the window's columns unioned by name, with the
same types), counts each model version's rows, and the client judges one version, as
``keel.monitoring.wiring.version_window`` does. Rows keep the log's order (time, then
sequence): segments whose times interleave (several replicas) send their row keys so the
MMD sample is drawn on the same rows.

A task reads its segment where it is (``SegmentStore.where``): by path when the segments
are in a local folder the workers share, else from the artifact store (S3) by URL,
storage options and digest (``keel.data.remote.Blob``), so workers on other machines
need only reach the store; the client reads no segment, not even a footer. A segment in
the store is fetched once per run (``fetched_once``): on a Dask cluster one task fetches
its bytes and keeps them in the cluster's memory, and every later pass (its columns, its
counts, its sampled rows) takes them from there, on whichever worker it runs, instead of
fetching the object again.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.data.remote import Blob, readable
from keel.monitoring.sketch import Layout, Sketch

if TYPE_CHECKING:
    import pandas as pd

    from keel.compute.engine import Engine
    from keel.data.partitions import Partition
    from keel.monitoring.reference import Reference
    from keel.monitoring.results import DriftReport, DriftSettings

__all__ = [
    "LogWindow",
    "compare_partitions",
    "count_segment",
    "fetched_once",
    "log_window_drift",
    "rows_at",
    "segment_bytes",
    "segment_columns",
    "segment_keys",
    "segment_rows",
    "sketch_partition",
    "window_columns",
]


Where = str | Blob | bytes
"""Where a task reads a segment or partition: a path the workers share, a blob in the
artifact store, or its bytes, fetched once by ``fetched_once``."""


@dataclass(frozen=True)
class _Counted:
    sketch: Sketch
    rows: int


def _columns(layout: Layout, partition: Partition) -> dict[str, np.ndarray]:
    from keel.data.partitions import read_partition

    frame = read_partition(partition)
    arrays = {name: np.asarray(frame[name]) for name in layout.columns if name in frame}
    if not arrays:  # no monitored column: still count the rows
        arrays = {"": np.empty(len(frame))}
    return arrays


def sketch_partition(layout: Layout, partition: Partition) -> _Counted:
    """One partition counted on the reference's layout, and its row count."""
    arrays = _columns(layout, partition)
    rows = len(next(iter(arrays.values())))
    arrays.pop("", None)
    return _Counted(layout.sketch(arrays), rows)


def rows_at(layout: Layout, item: tuple[Partition, Any]) -> dict[str, np.ndarray]:
    """The monitored columns of one partition at the given row positions (None: all)."""
    partition, positions = item
    arrays = _columns(layout, partition)
    arrays.pop("", None)
    if positions is None:
        return arrays
    return {name: values[positions] for name, values in arrays.items()}


def compare_partitions(
    engine: Engine,
    reference: Reference,
    partitions: list[Partition],
    settings: DriftSettings | None = None,
) -> DriftReport:
    """``compare_frame`` of the partitions' rows (in order), computed on ``engine``."""
    # here, not at the top: the workers import this module and need only the sketches
    from keel.monitoring.drift import compare, compare_frame
    from keel.monitoring.results import DriftSettings

    settings = settings or DriftSettings()
    layout = reference.layout
    counted: list[Any] = [None] * len(partitions)
    for position, result in engine.map(sketch_partition, layout, partitions):
        counted[position] = result
    sizes = np.array([c.rows for c in counted], dtype=np.int64)
    total = int(sizes.sum())
    if total <= settings.exact_rows:  # small: the raw rows, as compare_frame takes them
        whole = _gather(engine, rows_at, layout, [(p, None) for p in partitions])
        return compare_frame(reference, whole, settings)
    window = Sketch({})
    for c in counted:
        window = window.merge(c.sketch)
    sample = None
    if "mmd" in settings.tests:
        picked = np.random.default_rng(settings.seed).permutation(total)[: settings.mmd_sample]
        sample = _sample(engine, layout, partitions, sizes, picked)
    return compare(reference, window, settings, raw=None, sample=sample)


def _sample(
    engine: Engine,
    layout: Layout,
    partitions: list[Partition],
    sizes: np.ndarray,
    picked: np.ndarray,
) -> dict[str, np.ndarray]:
    """The window's rows at ``picked`` (global positions), in ``picked``'s order."""
    return _rows_at(engine, rows_at, layout, list(partitions), sizes, picked)


def _rows_at(
    engine: Engine,
    read: Callable[[Any, Any], dict[str, np.ndarray]],
    shared: Any,
    partitions: Sequence[Any],
    sizes: np.ndarray,
    picked: np.ndarray,
) -> dict[str, np.ndarray]:
    """The rows at ``picked`` (positions in the partitions' concatenation), in that order."""
    starts = np.concatenate([[0], np.cumsum(sizes)])
    ordered = np.sort(picked)
    owner = np.searchsorted(starts, ordered, side="right") - 1
    items = [(p, ordered[owner == i] - starts[i]) for i, p in enumerate(partitions)]
    gathered = _gather(engine, read, shared, items)  # rows in ascending position
    back = np.searchsorted(ordered, picked)
    return {name: values[back] for name, values in gathered.items()}


def _gather(
    engine: Engine,
    read: Callable[[Any, Any], dict[str, np.ndarray]],
    shared: Any,
    items: list[tuple[Any, Any]],
) -> dict[str, np.ndarray]:
    """The columns of every item's rows, partitions in order, concatenated."""
    import pandas as pd

    parts: list[Any] = [None] * len(items)
    for position, arrays in engine.map(read, shared, items):
        parts[position] = arrays
    names = list(dict.fromkeys(name for part in parts for name in part))
    # through pandas, so a column whose partitions disagree on dtype joins as one frame would
    return {
        name: np.asarray(
            pd.concat([pd.Series(part[name]) for part in parts if name in part], ignore_index=True)
        )
        for name in names
    }


# -- a logged window, one task per segment ----------------------------------------------


@dataclass(frozen=True)
class LogWindow:
    """What every segment's task needs (sent to each worker once)."""

    layout: Layout
    columns: tuple[tuple[str, str], ...]
    """The window's columns and their DuckDB types, unioned by name over its segments."""
    start: datetime | None
    version: str | None = None
    """The model version whose rows are read back (None while counting)."""


@dataclass(frozen=True)
class _Segment:
    versions: dict[str, _Counted]
    first: tuple[int, int] | None  # (time in ns, seq) of the segment's first window row
    last: tuple[int, int] | None


def segment_columns(_: object, where: Where) -> tuple[tuple[str, str], ...]:
    """One segment's columns and their DuckDB types (its Parquet footer)."""
    import duckdb

    with _opened(where) as path, duckdb.connect() as con:
        described = con.execute(f"DESCRIBE SELECT * FROM read_parquet({_literal(path)})")
        return tuple((str(row[0]), str(row[1])) for row in described.fetchall())


def window_columns(engine: Engine, places: Sequence[Where]) -> tuple[tuple[str, str], ...]:
    """The columns ``PredictionLog.read`` gives over these segments: each segment's own,
    read by a task, unioned by name with the types DuckDB's ``union_by_name`` gives."""
    import duckdb

    found: list[Any] = [None] * len(places)
    for position, columns in engine.map(segment_columns, None, list(places)):
        found[position] = columns
    empty = [  # no row, only the types: UNION ALL BY NAME widens them as read_parquet does
        "(SELECT "
        + ", ".join(f"CAST(NULL AS {kind}) AS {_name(name)}" for name, kind in columns)
        + " WHERE false)"
        for columns in found
        if columns
    ]
    if not empty:
        return ()
    with duckdb.connect() as con:
        described = con.execute("DESCRIBE " + " UNION ALL BY NAME ".join(empty)).fetchall()
    return tuple((str(row[0]), str(row[1])) for row in described)


def _read_segment(window: LogWindow, where: Where) -> pd.DataFrame:
    """One segment's rows in the window, by time: every window column, cast to the union's
    type, null where this segment lacks it (as DuckDB's ``union_by_name`` reads them)."""
    import duckdb

    with _opened(where) as path, duckdb.connect() as con:
        source = f"read_parquet({_literal(path)})"
        own = {str(row[0]) for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        select = ", ".join(
            f"CAST({_name(name) if name in own else 'NULL'} AS {kind}) AS {_name(name)}"
            for name, kind in window.columns
        )
        where_clause = "WHERE time >= ?" if window.start is not None else ""
        params = [window.start] if window.start is not None else []
        sql = f"SELECT {select} FROM {source} {where_clause} ORDER BY time, seq"
        return con.execute(sql, params).df()


def _version_arrays(layout: Layout, rows: pd.DataFrame) -> dict[str, np.ndarray]:
    from keel.monitoring.window import feature_view

    view = feature_view(rows.reset_index(drop=True))
    return {name: np.asarray(view[name]) for name in layout.columns if name in view}


def _key(rows: pd.DataFrame, at: int) -> tuple[int, int]:
    return int(rows["time"].iloc[at].value), int(rows["seq"].iloc[at])


def count_segment(window: LogWindow, where: Where) -> _Segment:
    """One segment's window rows counted per model version on the reference's layout."""
    from keel.monitoring.window import by_version

    rows = _read_segment(window, where)
    if rows.empty:
        return _Segment({}, None, None)
    versions = {
        version: _Counted(window.layout.sketch(_version_arrays(window.layout, part)), len(part))
        for version, part in by_version(rows).items()
    }
    return _Segment(versions, _key(rows, 0), _key(rows, -1))


def _of_version(window: LogWindow, where: Where) -> pd.DataFrame:
    from keel.monitoring.window import by_version

    rows = _read_segment(window, where)
    return by_version(rows).get(window.version or "", rows.iloc[:0])


def segment_rows(window: LogWindow, item: tuple[Where, Any]) -> dict[str, np.ndarray]:
    """The monitored columns of one segment's rows of ``window.version`` at the given
    positions (None: all)."""
    where, positions = item
    arrays = _version_arrays(window.layout, _of_version(window, where))
    if positions is None:
        return arrays
    return {name: values[positions] for name, values in arrays.items()}


def segment_keys(window: LogWindow, where: Where) -> np.ndarray:
    """(time in ns, seq) of one segment's rows of ``window.version``, in its order."""
    rows = _of_version(window, where)
    times = rows["time"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    return np.stack([times, rows["seq"].to_numpy(dtype=np.int64)], axis=1)


def log_window_drift(
    engine: Engine,
    reference: Reference,
    places: Sequence[Where],
    columns: tuple[tuple[str, str], ...],
    start: datetime | None,
    settings: DriftSettings,
    pick: Callable[[dict[str, int]], str],
    report: Callable[[int, int], None] | None = None,
) -> tuple[DriftReport, str, dict[str, int]] | None:
    """``compare_frame`` of the logged window's rows of the version ``pick`` chooses from
    the rows per version, computed one segment per task on ``engine`` (``places``: where
    each task reads its segment; ``columns``: their ``window_columns``); None when the
    window holds no row. ``report(done, total)`` is called as segments are counted."""
    from keel.monitoring.drift import compare, compare_frame

    report = report or (lambda done, total: None)
    window = LogWindow(reference.layout, columns, start)
    found: list[Any] = [None] * len(places)
    report(0, len(places))
    for done, (position, segment) in enumerate(engine.map(count_segment, window, places), 1):
        found[position] = segment
        report(done, len(places))
    counts: dict[str, int] = {}
    for segment in found:
        for name, counted in segment.versions.items():
            counts[name] = counts.get(name, 0) + counted.rows
    if not counts:
        return None
    version = pick(counts)
    window = LogWindow(reference.layout, window.columns, start, version)
    held = [(p, s) for p, s in zip(places, found, strict=True) if version in s.versions]
    held.sort(key=lambda item: item[1].first)  # the log's order: by time, then seq
    mine = [p for p, _ in held]
    sizes = np.array([s.versions[version].rows for _, s in held], dtype=np.int64)
    total = int(sizes.sum())
    if total <= settings.exact_rows:  # small: the raw rows, as compare_frame takes them
        whole = _gather(engine, segment_rows, window, [(p, None) for p in mine])
        return compare_frame(reference, whole, settings), version, counts
    sketch = Sketch({})
    for _, segment in held:
        sketch = sketch.merge(segment.versions[version].sketch)
    sample = None
    if "mmd" in settings.tests:
        picked = np.random.default_rng(settings.seed).permutation(total)[: settings.mmd_sample]
        if _interleaved([s for _, s in held]):
            picked = _log_order(engine, window, mine)[picked]
        sample = _rows_at(engine, segment_rows, window, mine, sizes, picked)
    return compare(reference, sketch, settings, raw=None, sample=sample), version, counts


def _interleaved(segments: Sequence[_Segment]) -> bool:
    """Whether, sorted by their first rows, a segment starts before the previous one ends."""
    return any(
        later.first is not None and earlier.last is not None and later.first <= earlier.last
        for earlier, later in itertools.pairwise(segments)
    )


def _log_order(engine: Engine, window: LogWindow, places: list[Where]) -> np.ndarray:
    """For each position in the log's order (time, seq), the row's position in the
    segments' concatenation."""
    keys: list[Any] = [None] * len(places)
    for position, found in engine.map(segment_keys, window, places):
        keys[position] = found
    joined = np.concatenate(keys)
    return np.lexsort((joined[:, 1], joined[:, 0]))


def _literal(path: str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- each object fetched once per run ---------------------------------------------------


def segment_bytes(where: Blob) -> bytes:
    """A blob's bytes, fetched (and its digest verified) on a worker."""
    with readable(where) as path, open(path, "rb") as file:
        return file.read()


@contextmanager
def fetched_once(engine: Engine, places: Sequence[Where]) -> Iterator[list[Any]]:
    """``places`` as the tasks of every pass over them should take them: each ``Blob``'s
    bytes fetched once and held by the engine for the block (``Engine.held``: in the
    cluster's memory, never from the store again; in this process, a temporary folder);
    paths stay as they are."""
    remote = [i for i, place in enumerate(places) if isinstance(place, Blob)]
    if not remote:
        yield list(places)
        return
    with engine.held(segment_bytes, [places[i] for i in remote]) as handles:
        held: list[Any] = list(places)
        for i, handle in zip(remote, handles, strict=True):
            held[i] = handle
        yield held


@contextmanager
def _opened(where: Where) -> Iterator[str]:
    """A local path to read ``where`` from: bytes written to a temporary file, anything
    else as ``keel.data.remote.readable`` gives it."""
    if not isinstance(where, bytes):
        with readable(where) as path:
            yield path
        return
    with tempfile.NamedTemporaryFile(prefix="keel-segment-", suffix=".parquet") as file:
        file.write(where)
        file.flush()
        yield file.name
