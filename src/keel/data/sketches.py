"""Mergeable column summaries: a partition's profile in a form that adds up.

A ``ColumnSketch`` holds what ``keel.data.profiling.profile`` reports for one column of
one partition, in parts that merge: counts, nulls, min / max and true-counts add or
compare exactly; mean and variance merge exactly (Chan et al.'s pairwise update);
category counts merge exactly (a ``Counter``) while the union stays within
``TOP_LIMIT`` values; quantiles come from an Apache DataSketches KLL sketch, whose
normalized rank error is ``KLL_RANK_ERROR`` (about 1.3% at k = 200, with 99% confidence),
whatever the number of partitions; distinct counts of text and integer columns past
``TOP_LIMIT`` come from a DataSketches HyperLogLog (``HLL_LG_K`` = 12: about 1.6% relative
error). Sketches travel as bytes, so a worker's result is plain data.

``sketch_batch`` summarises a batch; ``merge`` combines two summaries of one column;
``to_profile`` turns the merged summaries into the ``Profile`` the checks read.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, replace
from typing import Any

from keel.data.batch import TABLE, Batch, quote
from keel.data.model import QUANTILES, ColumnProfile, Profile
from keel.data.profiling import TOP_LIMIT, profile
from keel.errors import MissingExtraError

__all__ = [
    "HLL_LG_K",
    "KLL_K",
    "KLL_RANK_ERROR",
    "ColumnSketch",
    "merge",
    "merge_all",
    "sketch_batch",
    "to_profile",
]

KLL_K = 200
"""The KLL sketch's size parameter (DataSketches' default)."""
KLL_RANK_ERROR = 0.0133
"""The KLL sketch's documented normalized rank error at ``KLL_K`` (single quantile, 99%)."""
HLL_LG_K = 12
"""log2 of the HyperLogLog's register count."""

_NUMERIC = ("int", "float")
_COUNTED = ("string", "int")


def _datasketches() -> Any:
    try:
        import datasketches
    except ImportError:
        raise MissingExtraError("datasketches", "dask") from None
    return datasketches


@dataclass(frozen=True)
class ColumnSketch:
    """One column's mergeable summary (``top`` None: more than ``TOP_LIMIT`` values)."""

    name: str
    type: str
    kind: str
    count: int
    nulls: int
    min: Any = None
    max: Any = None
    mean: float | None = None
    m2: float = 0.0
    top: dict[str, int] | None = None
    kll: bytes | None = None
    hll: bytes | None = None

    @property
    def filled(self) -> int:
        return self.count - self.nulls


def sketch_batch(
    batch: Batch, profiled: Profile | None = None, skip: tuple[str, ...] = ()
) -> tuple[ColumnSketch, ...]:
    """The mergeable summary of every column of ``batch`` but ``skip``; ``profiled`` is
    the batch's profile when the caller has it already."""
    columns = [c for c in (profiled or profile(batch)).columns if c.name not in skip]
    numeric = [c.name for c in columns if c.kind in _NUMERIC and c.count > c.nulls]
    klls = _klls(batch, numeric)
    return tuple(_sketch(batch, column, klls.get(column.name)) for column in columns)


def _sketch(batch: Batch, column: ColumnProfile, kll: bytes | None) -> ColumnSketch:
    filled = column.count - column.nulls
    m2 = 0.0 if column.std is None else column.std**2 * (filled - 1)
    top: dict[str, int] | None = None
    if column.kind == "bool" or (column.kind in _COUNTED and column.top_complete):
        top = dict(column.top)
    elif column.kind in _COUNTED and filled == 0:
        top = {}
    sketch = ColumnSketch(
        column.name, column.type, column.kind, column.count, column.nulls,
        column.min, column.max, column.mean, m2, top, kll,
    )  # fmt: skip
    if column.kind in _COUNTED and top is None:
        sketch = replace(sketch, hll=_hll(batch, column.name))
    return sketch


def _klls(batch: Batch, names: list[str]) -> dict[str, bytes]:
    """A KLL sketch of each numeric column, all read in one scan (nulls and NaN left out)."""
    import numpy as np

    if not names:
        return {}
    selects = ", ".join(f"{quote(n)}::DOUBLE AS c{i}" for i, n in enumerate(names))
    arrays = batch.con.execute(f"SELECT {selects} FROM {TABLE}").fetchnumpy()
    kll = _datasketches().kll_doubles_sketch
    found = {}
    for i, name in enumerate(names):
        values = np.ma.getdata(arrays[f"c{i}"]).astype(float, copy=False)
        kept = ~np.ma.getmaskarray(arrays[f"c{i}"]) & ~np.isnan(values)
        sketch = kll(KLL_K)
        sketch.update(np.ascontiguousarray(values[kept]))
        found[name] = bytes(sketch.serialize())
    return found


def _hll(batch: Batch, name: str) -> bytes:
    """Every distinct value (as text) once into the HLL: DuckDB finds the distinct values
    (before casting them, so an integer column hashes numbers, not their text), so the
    Python loop runs over distinct values, not rows."""
    col = quote(name)
    distinct = f"SELECT DISTINCT {col} AS v FROM {TABLE} WHERE {col} IS NOT NULL"
    select = f"SELECT v::VARCHAR AS v FROM ({distinct})"
    sketch = _datasketches().hll_sketch(HLL_LG_K)
    deque(map(sketch.update, _column(batch, select).tolist()), maxlen=0)  # no Python loop
    return bytes(sketch.serialize_compact())


def _column(batch: Batch, select: str) -> Any:
    """Column ``v`` of a query as a NumPy array."""
    return batch.con.execute(select).fetchnumpy()["v"]


def merge(a: ColumnSketch, b: ColumnSketch) -> ColumnSketch:
    """The summary of both partitions' rows of one column."""
    mean, m2 = _moments(a, b)
    return replace(
        a,
        count=a.count + b.count,
        nulls=a.nulls + b.nulls,
        min=_extreme(min, a.min, b.min),
        max=_extreme(max, a.max, b.max),
        mean=mean,
        m2=m2,
        top=_counts(a.top, b.top),
        kll=_merged_kll(a.kll, b.kll),
        hll=_merged_hll(a, b),
    )


def merge_all(parts: list[tuple[ColumnSketch, ...]]) -> tuple[ColumnSketch, ...]:
    """Column-wise merge of every partition's summaries (all share one schema)."""
    if not parts:
        return ()
    merged = list(parts[0])
    for part in parts[1:]:
        merged = [merge(m, s) for m, s in zip(merged, part, strict=True)]
    return tuple(merged)


def _moments(a: ColumnSketch, b: ColumnSketch) -> tuple[float | None, float]:
    """Mean and sum of squared deviations of the union (Chan, Golub and LeVeque)."""
    if a.mean is None or b.mean is None:
        return (a.mean if b.mean is None else b.mean), (a.m2 if b.mean is None else b.m2)
    n_a, n_b = a.filled, b.filled
    total = n_a + n_b
    delta = b.mean - a.mean
    mean = a.mean + delta * n_b / total
    return mean, a.m2 + b.m2 + delta * delta * n_a * n_b / total


def _extreme(pick: Any, x: Any, y: Any) -> Any:
    return x if y is None else y if x is None else pick(x, y)


def _counts(a: dict[str, int] | None, b: dict[str, int] | None) -> dict[str, int] | None:
    if a is None or b is None:
        return None
    union = Counter(a) + Counter(b)
    return dict(union) if len(union) <= TOP_LIMIT else None


def _merged_kll(a: bytes | None, b: bytes | None) -> bytes | None:
    if a is None or b is None:
        return a or b
    kll = _datasketches().kll_doubles_sketch
    merged = kll.deserialize(a)
    merged.merge(kll.deserialize(b))
    return bytes(merged.serialize())


def _merged_hll(a: ColumnSketch, b: ColumnSketch) -> bytes | None:
    """Both sides' distinct values in one HLL: a side still counted exactly joins with
    its categories."""
    if a.kind not in _COUNTED or (a.hll is None and b.hll is None):
        return None
    if _counts(a.top, b.top) is not None:
        return None
    lib = _datasketches()
    union = lib.hll_union(HLL_LG_K)
    for side in (a, b):
        union.update(_as_hll(lib, side))
    return bytes(union.get_result().serialize_compact())


def _as_hll(lib: Any, side: ColumnSketch) -> Any:
    if side.hll is not None:
        return lib.hll_sketch.deserialize(side.hll)
    sketch = lib.hll_sketch(HLL_LG_K)
    for value in side.top or {}:
        sketch.update(value)
    return sketch


def to_profile(rows: int, columns: tuple[ColumnSketch, ...]) -> Profile:
    """The profile the merged summaries describe, in the local engine's shape."""
    return Profile(rows=rows, columns=tuple(_column_profile(c) for c in columns))


def _column_profile(column: ColumnSketch) -> ColumnProfile:
    filled, mean, std = column.filled, column.mean, None
    if column.kind in _NUMERIC and mean is not None and filled > 1:
        std = math.sqrt(max(column.m2, 0.0) / (filled - 1))
    if column.kind == "bool":  # exact from the counts, as the local profile has it
        mean = (column.top or {}).get("true", 0) / filled if filled else None
    return ColumnProfile(
        name=column.name, type=column.type, kind=column.kind, count=column.count,
        nulls=column.nulls, distinct=_distinct(column), min=column.min, max=column.max,
        mean=mean, std=std, quantiles=_quantiles(column),
        top=_top(column),
    )  # fmt: skip


def _distinct(column: ColumnSketch) -> int:
    if column.top is not None:
        return len(column.top)
    if column.hll is None:
        return -1
    estimate: float = _datasketches().hll_sketch.deserialize(column.hll).get_estimate()
    return min(round(estimate), column.filled)


def _top(column: ColumnSketch) -> tuple[tuple[str, int], ...]:
    if not column.top:
        return ()
    return tuple(sorted(column.top.items(), key=lambda kv: (-kv[1], kv[0])))


def _quantiles(column: ColumnSketch) -> tuple[float, ...]:
    """The KLL sketch's inner quantiles with the exact min and max at the ends."""
    if column.kll is None:
        return ()
    sketch = _datasketches().kll_doubles_sketch.deserialize(column.kll)
    inner = [float(q) for q in sketch.get_quantiles(list(QUANTILES[1:-1]))]
    if not all(math.isfinite(q) for q in inner):
        return ()
    low, high = column.min, column.max
    if not isinstance(low, int | float) or not isinstance(high, int | float):
        return tuple(inner)
    return (float(low), *inner, float(high))
