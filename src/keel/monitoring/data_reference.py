"""A published data version as the drift reference (``monitoring.reference: data:SOURCE``).

``data:SOURCE`` is the source's newest live version, ``data:SOURCE@VERSION`` the one whose
id starts with ``VERSION`` (at least 4 characters); the reference holds the model's feature
columns (the production model's, else the newest's, else ``training.features``) that the
version has.

A partitioned source's version (a manifest of Parquet partitions in the artifact store)
is never loaded here: on the project's engine (the Dask workers, or this process on the
local engine) each partition is read in three passes, and only what merges comes back:

1. per column, its non-null count, its distinct values while few, its largest value and
   its sorted values at evenly spaced ranks (a numeric column); and the partition's rows
   of the reference's row sample. A categorical column's count per value is shuffled by
   the value's hash: each bucket's reduction (on the workers) sums its values' counts
   and sends back only its most frequent values, its count of values seen once and, while
   few, the values themselves, so the client's share does not grow with the column's
   distinct values. Every copy of a value is in one bucket, so the most frequent values
   overall are among the buckets' most frequent;
2. for each quantile edge, the count below a bracket the first pass guarantees holds it,
   and the few values inside: the exact order statistics, so the bins are the ones
   ``Reference.from_frame`` draws from the whole table (``np.quantile``'s linear rule);
3. the partition counted on those bins (``Layout.sketch``, the sketch log segments use);
   the counts add up to the whole table's.

So the reference equals ``Reference.from_frame`` of the table's feature columns, with one
difference: a column's kind comes from its Parquet type, so a whole-number column with
nulls is numeric here. A partition in a remote store is fetched once for the three passes
(``keel.monitoring.cluster.fetched_once``). Any other version (a plain source's, or one
that upserts) is read here with ``keel.data.access.read_published``. A version never
changes, so its reference is kept in the project's state folder (``.keel/references``)
and computed once per machine, not by every drift run or log.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from keel.errors import MonitoringError
from keel.monitoring.cluster import Where, _opened, fetched_once
from keel.monitoring.reference import _KNOWN_LIMIT, Reference
from keel.monitoring.sketch import Bins, Layout, Sketch, as_float

if TYPE_CHECKING:
    import pandas as pd

    from keel.compute.engine import ShuffleEngine
    from keel.data.model import DataVersion
    from keel.project import Project
    from keel.schema import ComputeConfig

__all__ = ["GRID", "from_data", "quantiles_of", "reference_from_partitions"]

_BUCKETS = 8
"""Buckets a categorical column's values are shuffled into in pass 1."""

GRID = 8192
"""Ranks per partition the first pass samples a numeric column at: a quantile's bracket
then holds at most about ``2 * rows / GRID`` values."""
_FORM = 1  # how a kept reference is computed; another form is computed again
_NUMERIC = re.compile(r"^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|FLOAT|DOUBLE|REAL|DECIMAL.*)$")


def from_data(
    project: Project,
    spec: str,
    options: dict[str, Any] | None = None,
    compute: ComputeConfig | None = None,
) -> Reference:
    """The Reference of ``data:SOURCE[@VERSION]`` (``spec`` without ``data:``)."""
    from keel.data.access import (
        accumulates,
        is_manifest,
        read_published,
        table_versions,
        upsert_keys,
    )
    from keel.data.catalog import Catalog

    options = dict(options or {})
    exclude = set(options.pop("exclude", ()) or ())
    source, _, prefix = spec.partition("@")
    if source not in project.config.sources:
        known = ", ".join(project.config.sources) or "none are declared"
        raise MonitoringError(
            f"monitoring.reference names data:{spec}, but keel.yaml declares no source "
            f"'{source}' (sources: {known}); name a declared source"
        )
    config = project.config.sources[source]
    catalog = Catalog(project.store)
    upto = _version(catalog, source, prefix) if prefix else None
    versions = table_versions(catalog.live_versions(source), upto, not accumulates(config))
    if not versions:
        raise MonitoringError(
            f"monitoring.reference names data:{spec}, but '{source}' has no live data "
            f"version; run `keel ingest --source {source}` first"
        )
    wanted = [c for c in _model_columns(project, versions[-1]) if c not in exclude]
    columns = [c for c in wanted if c in versions[-1].schema]
    if not columns:
        raise MonitoringError(
            f"data version {versions[-1].short} of '{source}' has none of the model's feature "
            f"columns ({', '.join(wanted) or 'none'}); name a version of the source the "
            "model was trained on"
        )
    bins, categories = int(options.get("bins", 100)), int(options.get("max_categories", 50))
    kept = _kept(project, [v.id for v in versions], columns, bins, categories)
    if kept.exists():
        return Reference.load(kept)
    if len(versions) == 1 and is_manifest(versions[0]) and not upsert_keys(config):
        reference = _from_manifest(project, versions[0], columns, bins, categories, compute)
    else:
        frame = read_published(project, source, upto).frame
        reference = Reference.from_frame(
            frame, columns=columns, bins=bins, max_categories=categories
        )
    kept.parent.mkdir(parents=True, exist_ok=True)
    partial = kept.with_suffix(f".{os.getpid()}.part")
    reference.save(partial)
    os.replace(partial, kept)
    return reference


def _kept(
    project: Project, versions: list[str], columns: list[str], bins: int, categories: int
) -> Path:
    """Where this machine keeps the reference of these versions and options: a data
    version never changes, so it is computed once, not on every drift run or log."""
    key = orjson.dumps([_FORM, versions, columns, bins, categories])
    return project.state_dir / "references" / f"{hashlib.sha256(key).hexdigest()[:32]}.json"


def _version(catalog: Any, source: str, prefix: str) -> DataVersion:
    from keel.data.catalog import live_version

    named = f"monitoring.reference names data:{source}@{prefix}"
    return live_version(catalog, source, prefix, named, MonitoringError, "")


def _model_columns(project: Project, version: DataVersion) -> list[str]:
    """The model's feature columns: the production (else newest) model version's schema,
    else ``training.features``, else every column but the target and excluded ones."""
    from keel.errors import VersionNotFound
    from keel.training.registry import Registry

    registry = Registry(project.store)
    for ref in ("production", "latest"):
        try:
            record = registry.record(registry.resolve(ref).version)
        except VersionNotFound:
            continue
        return [str(column["name"]) for column in record.get("schema") or []]
    from keel.schema import TrainingConfig

    training = project.config.training or TrainingConfig()
    if training.features:
        return list(training.features)
    dropped = {training.target, *training.exclude}
    return [name for name in version.schema if name not in dropped]


# -- a manifest version, partition by partition --------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """What every partition's task needs: the columns, their kinds, the grid."""

    columns: tuple[tuple[str, str], ...]  # (name, "numeric" | "categorical")
    grid: int = GRID
    brackets: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    layout: Layout | None = None
    categories: int = 50  # the most frequent values a categorical column's bins keep
    buckets: int = 1  # pass 1's buckets: _BUCKETS with a categorical column, else 1


@dataclass(frozen=True)
class _Scanned:
    rows: int
    numeric: dict[str, tuple[int, float, Any, np.ndarray, np.ndarray]]
    """name -> (finite count, largest finite value, distinct values or None, ranks, values)"""
    sample: dict[str, np.ndarray]


@dataclass(frozen=True)
class _Tally:
    """One bucket's (or, merged, the whole table's) counts of a categorical column."""

    top: tuple[tuple[str, int], ...]  # the most frequent values, ties by name
    distinct: int
    singletons: int  # values seen once
    values: frozenset[str] | None  # every value, while at most _KNOWN_LIMIT; else None

    @classmethod
    def of(cls, counts: Counter[str], limit: int) -> _Tally:
        order = sorted(counts, key=lambda value: (-counts[value], value))[:limit]
        few = len(counts) <= _KNOWN_LIMIT
        return cls(
            top=tuple((value, counts[value]) for value in order),
            distinct=len(counts),
            singletons=sum(1 for n in counts.values() if n == 1),
            values=frozenset(counts) if few else None,
        )

    @classmethod
    def merged(cls, buckets: Sequence[_Tally], limit: int) -> _Tally:
        """The whole column's tally from its buckets' (each value in one bucket only)."""
        pairs = sorted((pair for b in buckets for pair in b.top), key=lambda p: (-p[1], p[0]))
        distinct = sum(b.distinct for b in buckets)
        values = None
        if distinct <= _KNOWN_LIMIT and all(b.values is not None for b in buckets):
            values = frozenset().union(*(b.values or () for b in buckets))
        singletons = sum(b.singletons for b in buckets)
        return cls(tuple(pairs[:limit]), distinct, singletons, values)


def _from_manifest(
    project: Project,
    version: DataVersion,
    columns: list[str],
    bins: int,
    categories: int,
    compute: ComputeConfig | None,
) -> Reference:
    from keel.compute import open_engine
    from keel.data.remote import where_to_read

    manifest = orjson.loads(project.artifacts.get_bytes(str(version.lineage["manifest"])))
    types = {str(name): str(kind) for name, kind in manifest["schema"]}
    kinds = tuple(
        (name, "numeric" if _NUMERIC.match(types[name].upper()) else "categorical")
        for name in columns
    )
    parts = manifest["partitions"]
    places = [where_to_read(project.artifacts, str(p["sha256"])) for p in parts]
    sizes = [int(p["rows"]) for p in parts]
    engine = open_engine(compute or project.config.compute)
    try:
        with fetched_once(engine, places) as held:
            return reference_from_partitions(engine, held, sizes, kinds, bins, categories)
    finally:
        engine.close()


def reference_from_partitions(
    engine: ShuffleEngine,
    places: Sequence[Any],
    sizes: Sequence[int],
    kinds: tuple[tuple[str, str], ...],
    bins: int = 100,
    max_categories: int = 50,
    sample: int = 20_000,
    seed: int = 0,
    grid: int = GRID,
) -> Reference:
    """``Reference.from_frame`` of the partitions' rows (in order; ``sizes``: their row
    counts) restricted to ``kinds``' columns, computed on ``engine`` in three passes."""
    rows = int(sum(sizes))
    picked = np.random.default_rng(seed).permutation(rows)[:sample]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    ordered = np.sort(picked)
    owner = np.searchsorted(starts, ordered, side="right") - 1
    items = [(p, ordered[owner == i] - starts[i]) for i, p in enumerate(places)]
    categorical = any(kind != "numeric" for _, kind in kinds)
    plan = _Plan(kinds, grid, categories=max_categories, buckets=_BUCKETS if categorical else 1)
    scans: list[Any] = [None] * len(places)
    tallies: list[dict[str, _Tally]] = []
    for what, position, found in engine.shuffle(_scan, plan, items, plan.buckets, _tallied):
        if what == "item":
            scans[position] = found
        else:
            tallies.append(found)
    found = sum(s.rows for s in scans)
    if found != rows:
        raise MonitoringError(
            f"the reference's partitions hold {found} rows, not the {rows} their manifest "
            "records; ingest the source again"
        )
    names = [name for name, _ in kinds]
    numeric = [name for name, kind in kinds if kind == "numeric"]
    wanted = {name: _ranks_needed(sum(s.numeric[name][0] for s in scans), bins) for name in numeric}
    brackets = {name: _brackets(scans, name, wanted[name]) for name in numeric}
    picks: list[Any] = [None] * len(places)
    bracketed = _Plan(kinds, grid, {n: [(lo, hi) for lo, hi, _ in b] for n, b in brackets.items()})
    for position, found_values in engine.map(_bracket, bracketed, list(places)):
        picks[position] = found_values
    columns: dict[str, Bins] = {}
    known: dict[str, frozenset[str]] = {}
    singletons: dict[str, int] = {}
    for name, kind in kinds:
        if kind == "numeric":
            columns[name] = _numeric_bins(scans, picks, name, brackets[name], wanted[name], bins)
        else:
            tally = _Tally.merged([t[name] for t in tallies], max_categories)
            columns[name] = Bins("categorical", categories=tuple(v for v, _ in tally.top))
            known[name] = tally.values or frozenset()
            singletons[name] = tally.singletons
    layout = Layout(columns, known)
    sketch = Sketch({})
    for _, counted in engine.map(_count, _Plan(kinds, grid, layout=layout), list(places)):
        sketch = sketch.merge(counted)
    gathered = {
        name: np.concatenate([s.sample[name] for s in scans]) if scans else np.empty(0)
        for name in names
    }
    back = np.searchsorted(ordered, picked)
    drawn = {name: values[back] for name, values in gathered.items()}
    return Reference(layout, sketch, drawn, rows, singletons)


def _read(plan: _Plan, where: Where) -> dict[str, np.ndarray]:
    """A partition's columns: numeric ones as floats (nulls NaN), others as pandas has them."""
    import duckdb

    from keel.compute.engine import worker_threads

    names = ", ".join('"' + name.replace('"', '""') + '"' for name, _ in plan.columns)
    threads = worker_threads()
    with _opened(where) as path, duckdb.connect(config=_threads(threads)) as con:
        literal = "'" + path.replace("'", "''") + "'"
        frame: pd.DataFrame = con.execute(f"SELECT {names} FROM read_parquet({literal})").df()
    return {
        name: as_float(np.asarray(frame[name])) if kind == "numeric" else np.asarray(frame[name])
        for name, kind in plan.columns
    }


def _threads(threads: int | None) -> dict[str, Any]:
    return {} if threads is None else {"threads": threads}


def _scan(
    plan: _Plan, item: tuple[Where, np.ndarray]
) -> tuple[_Scanned, list[dict[str, Counter[str]]]]:
    """Pass 1 over one partition: what it adds up to, and each categorical column's
    counts per value cut into ``plan.buckets`` pieces by the value's hash."""
    import pandas as pd

    from keel.training.reference import DISTINCT_LIMIT

    where, positions = item
    arrays = _read(plan, where)
    rows = len(next(iter(arrays.values()))) if arrays else 0
    numeric, sample = {}, {}
    pieces: list[dict[str, Counter[str]]] = [{} for _ in range(plan.buckets)]
    for name, kind in plan.columns:
        values = arrays[name]
        if kind == "numeric":
            finite = np.sort(values[np.isfinite(values)])
            distinct = np.unique(finite)
            step = max(1, -(-finite.size // plan.grid))
            ranks = np.unique(np.append(np.arange(0, finite.size, step), finite.size - 1))
            ranks = ranks[ranks >= 0]
            numeric[name] = (
                int(finite.size),
                float(finite[-1]) if finite.size else -np.inf,
                distinct if distinct.size <= DISTINCT_LIMIT else None,
                ranks.astype(np.int64),
                finite[ranks],
            )
            sample[name] = values[positions].astype(np.float64)
        else:
            counts = pd.Series(values).dropna().astype(str).value_counts(sort=False)
            bucket = pd.util.hash_array(counts.index.to_numpy(dtype=object)) % plan.buckets
            for b in range(plan.buckets):
                part = counts[bucket == b]
                pieces[b][name] = Counter({str(k): int(v) for k, v in part.items()})
            sample[name] = values[positions].astype(object)
    return _Scanned(rows, numeric, sample), pieces


def _tallied(plan: _Plan, pieces: list[dict[str, Counter[str]]]) -> dict[str, _Tally]:
    """One bucket of pass 1, on the workers: its categorical values' counts summed over
    the partitions, kept to what the reference needs."""
    out = {}
    for name, kind in plan.columns:
        if kind != "numeric":
            counts: Counter[str] = Counter()
            for piece in pieces:
                counts.update(piece[name])
            out[name] = _Tally.of(counts, plan.categories)
    return out


def _bracket(plan: _Plan, where: Where) -> dict[str, list[tuple[int, np.ndarray]]]:
    """Pass 2 over one partition: per column and bracket, the count of finite values
    below it and its values inside (sorted)."""
    arrays = _read(plan, where)
    out = {}
    for name, brackets in plan.brackets.items():
        values = arrays[name]
        finite = np.sort(values[np.isfinite(values)])
        found = []
        for lo, hi in brackets:
            below = int(np.searchsorted(finite, lo, side="left"))
            upto = int(np.searchsorted(finite, hi, side="right"))
            found.append((below, finite[below:upto]))
        out[name] = found
    return out


def _count(plan: _Plan, where: Where) -> Sketch:
    """Pass 3 over one partition: its counts on the reference's bins."""
    assert plan.layout is not None
    return plan.layout.sketch(_read(plan, where))


# -- the exact order statistics np.quantile reads --------------------------------------------


def quantiles_of(n: int, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For ``np.quantile(values, np.linspace(0, 1, bins + 1))`` of ``n`` sorted values: the
    rank below and above each quantile and its interpolation weight, as numpy's linear
    method computes them."""
    q = np.linspace(0, 1, bins + 1)
    virtual = (n - 1) * q
    below = np.floor(virtual)
    gamma = np.asarray(virtual - below, np.float64)
    below = below.astype(np.int64)
    above = below + 1
    last = virtual >= n - 1  # the largest value (both sides equal: the weight is moot)
    below[last], above[last] = n - 1, n - 1
    return below, above, gamma


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """numpy's quantile interpolation, operation for operation."""
    diff = b - a
    out = np.add(a, diff * t)
    np.subtract(b, diff * (1 - t), out=out, where=t >= 0.5)
    return np.asarray(out, np.float64)


def _ranks_needed(n: int, bins: int) -> np.ndarray:
    if n == 0:
        return np.empty(0, np.int64)
    below, above, _ = quantiles_of(n, bins)
    return np.unique(np.concatenate([below, above]))


def _brackets(
    scans: list[_Scanned], name: str, ranks: np.ndarray
) -> list[tuple[float, float, Any]]:
    """For each wanted rank R, values ``lo <= hi`` between which the R-th smallest finite
    value (0-based) surely lies, from the partitions' sampled ranks; overlapping brackets
    merged. Each bracket carries the ranks it serves."""
    grids = [(s.numeric[name][3], s.numeric[name][4], s.numeric[name][0]) for s in scans]
    candidates = np.unique(np.concatenate([g[1] for g in grids] + [np.empty(0)]))
    if ranks.size == 0:
        return []
    most_below: Any = np.zeros(candidates.size, np.int64)  # an upper bound of #(values < c)
    least_upto: Any = np.zeros(candidates.size, np.int64)  # a lower bound of #(values <= c)
    for at, values, total in grids:
        if total == 0:
            continue
        i = np.searchsorted(values, candidates, side="left")
        most_below += np.where(i < values.size, at[np.minimum(i, values.size - 1)], total)
        j = np.searchsorted(values, candidates, side="right")
        least_upto += np.where(j > 0, at[np.maximum(j - 1, 0)] + 1, 0)
    found: list[tuple[float, float, int]] = []
    for rank in ranks:
        first = int(np.searchsorted(most_below, rank, side="right")) - 1
        last = int(np.searchsorted(least_upto, rank + 1, side="left"))
        lo = float(candidates[first]) if first >= 0 else -np.inf
        hi = float(candidates[last]) if last < candidates.size else np.inf
        found.append((lo, hi, int(rank)))
    found.sort()
    merged: list[tuple[float, float, list[int]]] = []
    for lo, hi, rank in found:
        if merged and lo <= merged[-1][1]:
            before = merged[-1]
            merged[-1] = (before[0], max(before[1], hi), [*before[2], rank])
        else:
            merged.append((lo, hi, [rank]))
    return [(lo, hi, served) for lo, hi, served in merged]


def _order_statistics(
    picks: list[dict[str, list[tuple[int, np.ndarray]]]],
    name: str,
    brackets: list[tuple[float, float, Any]],
) -> dict[int, float]:
    """The finite values at the wanted ranks, from the brackets' counts and values."""
    values: dict[int, float] = {}
    for k, (_, _, served) in enumerate(brackets):
        below = sum(p[name][k][0] for p in picks)
        inside = np.sort(np.concatenate([p[name][k][1] for p in picks]))
        for rank in served:
            values[rank] = float(inside[rank - below])
    return values


def _numeric_bins(
    scans: list[_Scanned],
    picks: list[dict[str, list[tuple[int, np.ndarray]]]],
    name: str,
    brackets: list[tuple[float, float, Any]],
    ranks: np.ndarray,
    bins: int,
) -> Bins:
    """``Bins.numeric`` of the whole column (``keel.training.reference.quantile_edges``)."""
    from keel.training.reference import closed_edges, counted_by_value

    n = sum(s.numeric[name][0] for s in scans)
    if n == 0:
        return Bins("numeric", edges=(0.0, float(np.nextafter(0.0, 1.0))))
    top = max(s.numeric[name][1] for s in scans)
    parts = [s.numeric[name][2] for s in scans if s.numeric[name][0]]
    distinct = None
    if all(p is not None for p in parts):
        distinct = np.unique(np.concatenate(parts))
    if distinct is not None and counted_by_value(distinct.size, n):
        edges = points = distinct
    else:
        at = _order_statistics(picks, name, brackets)
        below, above, gamma = quantiles_of(n, bins)
        low = np.array([at[int(r)] for r in below])
        high = np.array([at[int(r)] for r in above])
        quantiles = _lerp(low, high, gamma)
        edges, repeats = np.unique(quantiles, return_counts=True)
        points = edges[repeats > 1]
    edges = closed_edges(edges, points, top)
    return Bins("numeric", edges=tuple(float(edge) for edge in edges))
