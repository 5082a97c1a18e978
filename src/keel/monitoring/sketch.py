"""Mergeable per-window sketches on buckets fixed by a reference.

A numeric column is counted on the reference's quantile bins plus an underflow and an
overflow bucket (values outside the reference's range). A value that holds a quantile's
worth of the reference on its own (the 0 of a mostly-zero amount, each value of a flag or
a small count) gets a bucket of its own, ``[v, nextafter(v))``, so a change in its share is
seen; a column with at most ``DISTINCT_LIMIT`` distinct values gets one bucket per value
(the rule is ``keel.training.reference.quantile_edges``, which training's references use too).
A categorical column is counted on the reference's categories plus an ``__other__`` bucket
(reference categories past the cap) and an ``__unseen__`` bucket (values the reference
never had; when the reference had too many distinct values to keep them all, every value
past the cap counts as ``__other__``). Nulls are counted apart.
Sketches on the same layout merge by adding counts, so any window is the merge of its
segments' sketches and a drift check over it never touches raw rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = ["Bins", "ColumnSketch", "Layout", "Sketch", "as_float", "column_values"]

OTHER = "__other__"
UNSEEN = "__unseen__"
Kind = Literal["numeric", "categorical"]
Counts = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Bins:
    """The buckets of one column: numeric bin edges or the categories, as the reference had."""

    kind: Kind
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        """Number of buckets, the overflow and unseen ones included."""
        return len(self.edges) + 1 if self.kind == "numeric" else len(self.categories) + 2

    def index(self, values: np.ndarray) -> Counts:
        """The bucket of each non-null value."""
        if self.kind == "numeric":
            return np.searchsorted(np.asarray(self.edges), values, side="right").astype(np.int64)
        import pandas as pd

        codes, uniques = pd.factorize(values)
        buckets: Counts = self.buckets_of([str(u) for u in uniques], frozenset())[codes]
        return buckets

    def buckets_of(self, labels: list[str], known: frozenset[str]) -> Counts:
        """The bucket of each distinct categorical value: its own, ``other``, or ``unseen``."""
        lookup = {category: i for i, category in enumerate(self.categories)}
        other, unseen = len(self.categories), len(self.categories) + 1
        return np.fromiter(
            (lookup.get(v, other if v in known or not known else unseen) for v in labels),
            np.int64,
            len(labels),
        )

    def point_buckets(self) -> npt.NDArray[np.bool_]:
        """Which buckets of a numeric column hold exactly one value, ``[v, nextafter(v))``."""
        edges = np.asarray(self.edges)
        inner = edges[1:] == np.nextafter(edges[:-1], np.inf)
        return np.concatenate([[False], inner, [False]])

    def labels(self) -> list[str]:
        """A readable name for each bucket."""
        if self.kind == "categorical":
            return [*self.categories, OTHER, UNSEEN]
        edges = [f"{edge:.4g}" for edge in self.edges]
        points = self.point_buckets()[1:-1]
        inner = [
            f"= {lo}" if point else f"[{lo}, {hi})"
            for (lo, hi), point in zip(itertools.pairwise(edges), points, strict=True)
        ]
        return [f"< {edges[0]}", *inner, f">= {edges[-1]}"]

    @classmethod
    def numeric(cls, values: np.ndarray, bins: int) -> Bins:
        """Quantile edges of the reference values, a bucket of its own for each value that
        fills a quantile (every value, if there are few); the last edge lies just past the
        max. ``np.unique`` of the quantiles alone would fold a 0/1 flag into one bin."""
        from keel.training.reference import quantile_edges

        finite = values[np.isfinite(values)]
        edges = quantile_edges(finite, bins)
        return cls("numeric", edges=tuple(float(edge) for edge in edges))

    @classmethod
    def categorical(cls, values: np.ndarray, limit: int) -> Bins:
        """The reference's most frequent categories, at most ``limit`` of them."""
        names, counts = np.unique(values.astype(str), return_counts=True)
        order = np.lexsort((names, -counts))[:limit]
        return cls("categorical", categories=tuple(str(names[i]) for i in order))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "edges": list(self.edges), "categories": list(self.categories)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Bins:
        return cls(data["kind"], tuple(data["edges"]), tuple(data["categories"]))


@dataclass(frozen=True)
class ColumnSketch:
    """Counts per bucket and the number of nulls of one column in one window."""

    counts: Counts
    nulls: int

    @property
    def rows(self) -> int:
        return int(self.counts.sum()) + self.nulls

    def merge(self, other: ColumnSketch) -> ColumnSketch:
        return ColumnSketch(self.counts + other.counts, self.nulls + other.nulls)


@dataclass(frozen=True)
class Layout:
    """The bucket layout of every monitored column, fixed by the reference."""

    columns: Mapping[str, Bins]
    known: Mapping[str, frozenset[str]]

    def sketch(self, frame: Mapping[str, Any]) -> Sketch:
        """Count one batch of rows (a DataFrame or a mapping of columns)."""
        columns = {}
        for name, _bins in self.columns.items():
            if name in frame:
                columns[name] = self.sketch_column(name, np.asarray(frame[name]))
        return Sketch(columns)

    def sketch_column(self, name: str, raw: np.ndarray) -> ColumnSketch:
        bins = self.columns[name]
        if bins.kind == "categorical":
            return _categorical_sketch(bins, raw, self.known.get(name, frozenset()))
        values, nulls = column_values(raw, "numeric")
        counts = np.bincount(bins.index(values), minlength=bins.size).astype(np.int64)
        return ColumnSketch(counts, nulls)

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": {name: bins.to_dict() for name, bins in self.columns.items()},
            "known": {name: sorted(values) for name, values in self.known.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Layout:
        columns = {name: Bins.from_dict(bins) for name, bins in data["columns"].items()}
        known = {name: frozenset(values) for name, values in data.get("known", {}).items()}
        return cls(columns, known)


@dataclass(frozen=True)
class Sketch:
    """The column sketches of one window; sketches on one layout merge."""

    columns: Mapping[str, ColumnSketch]

    def merge(self, other: Sketch) -> Sketch:
        names = dict.fromkeys([*self.columns, *other.columns])
        merged = {}
        for name in names:
            mine, theirs = self.columns.get(name), other.columns.get(name)
            merged[name] = mine.merge(theirs) if mine and theirs else (mine or theirs)
        return Sketch({name: sketch for name, sketch in merged.items() if sketch is not None})

    @property
    def rows(self) -> int:
        return max((column.rows for column in self.columns.values()), default=0)

    def to_dict(self) -> dict[str, Any]:
        return {
            name: {"counts": column.counts.tolist(), "nulls": column.nulls}
            for name, column in self.columns.items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sketch:
        return cls(
            {
                name: ColumnSketch(np.asarray(item["counts"], np.int64), int(item["nulls"]))
                for name, item in data.items()
            }
        )


def _categorical_sketch(bins: Bins, raw: np.ndarray, known: frozenset[str]) -> ColumnSketch:
    """Count by distinct value (factorised once), not value by value."""
    import pandas as pd

    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    buckets = bins.buckets_of([str(u) for u in uniques], known)
    present = codes >= 0
    counts = np.bincount(buckets[codes[present]], minlength=bins.size).astype(np.int64)
    return ColumnSketch(counts, int((~present).sum()))


def column_values(raw: np.ndarray, kind: Kind) -> tuple[np.ndarray, int]:
    """The non-null values of a column, as floats or strings, and how many were null."""
    if kind == "numeric":
        values = as_float(raw)
        present = ~np.isnan(values)
        return values[present], int((~present).sum())
    import pandas as pd

    present = ~np.asarray(pd.isna(raw), dtype=bool)
    return raw[present].astype(str), int((~present).sum())


def as_float(raw: np.ndarray) -> npt.NDArray[np.float64]:
    if raw.dtype.kind in "fiu":
        return raw.astype(np.float64, copy=False)
    import pandas as pd

    numbers = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce")
    return np.asarray(numbers, dtype=np.float64)
