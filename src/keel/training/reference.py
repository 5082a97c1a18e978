"""Reference statistics of features and predictions: what monitoring compares against.

Numeric columns get decile bin edges with the count in each bin, range, mean and null
rate; categorical columns get their category counts and null rate. Pure functions of the
held-out frame.

The edges follow ``quantile_edges``, the one rule monitoring's sketches bin by too: a
value that fills a quantile (the zeros of a mostly-zero amount) gets a bucket of its own,
and a column with few distinct values that repeat (a 0/1 flag, a small count) gets one
bucket per value, so drift against a model's reference sees those columns move.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DISTINCT_LIMIT",
    "closed_edges",
    "counted_by_value",
    "numeric_reference",
    "quantile_edges",
    "reference_statistics",
]

_DECILES = 10
DISTINCT_LIMIT = 64
"""A numeric column with at most this many distinct values is counted value by value..."""
_REPEATS = 5
"""...if they repeat, on average, this often: 40 reference rows of a continuous column
have 40 distinct values too, and every new value would look like one never seen."""


def quantile_edges(values: np.ndarray[Any, Any], bins: int) -> np.ndarray[Any, Any]:
    """Bucket edges for finite reference values: quantile edges, a bucket ``[v,
    nextafter(v))`` of its own for each value that fills a quantile (every value, if there
    are few that repeat); the last edge lies just past the max. ``np.unique`` of the
    quantiles alone would fold a 0/1 flag into one bin."""
    import pandas as pd

    if values.size == 0:
        return np.array([0.0, np.nextafter(0.0, 1.0)])
    distinct = pd.unique(values)
    if counted_by_value(distinct.size, values.size):
        edges = points = np.sort(distinct)
    else:
        quantiles = np.quantile(values, np.linspace(0, 1, bins + 1))
        edges, repeats = np.unique(quantiles, return_counts=True)
        points = edges[repeats > 1]
    return closed_edges(edges, points, values.max())


def counted_by_value(distinct: int, rows: int) -> bool:
    """Whether a numeric column of ``rows`` values, ``distinct`` of them different, gets
    a bucket per value rather than quantile buckets."""
    return distinct <= DISTINCT_LIMIT and distinct * _REPEATS <= rows


def closed_edges(
    edges: np.ndarray[Any, Any], points: np.ndarray[Any, Any], top: Any
) -> np.ndarray[Any, Any]:
    """``edges`` with a bucket ``[v, nextafter(v))`` for each of ``points``, and the last
    edge just past ``top``, the largest value."""
    edges = np.unique(np.concatenate([edges, np.nextafter(points, np.inf)]))
    if edges[-1] <= top:
        edges = np.append(edges[:-1], np.nextafter(edges[-1], np.inf))
    if edges.size == 1:
        edges = np.append(edges, np.nextafter(edges[0], np.inf))
    return edges


def reference_statistics(frame: pd.DataFrame, schema: list[dict[str, Any]]) -> dict[str, Any]:
    """Per column of ``schema``: its reference statistics over ``frame``."""
    out: dict[str, Any] = {}
    for column in schema:
        values = frame[column["name"]]
        if column["type"] == "category":
            out[column["name"]] = _categorical_reference(values)
        else:
            out[column["name"]] = numeric_reference(values.astype("float64").to_numpy())
    return out


def numeric_reference(values: np.ndarray[Any, Any]) -> dict[str, Any]:
    """Decile edges (``quantile_edges``), counts per bin, range, mean and null rate of a
    numeric array."""
    present = values[~np.isnan(values)]
    null_rate = 1 - len(present) / len(values) if len(values) else 0.0
    if len(present) == 0:
        return {"kind": "numeric", "count": len(values), "null_rate": null_rate, "edges": []}
    edges = quantile_edges(present, _DECILES)
    counts = np.histogram(present, bins=edges)[0]
    return {
        "kind": "numeric",
        "count": len(values),
        "null_rate": round(float(null_rate), 6),
        "edges": [float(edge) for edge in edges],
        "counts": [int(count) for count in counts],
        "min": float(present.min()),
        "max": float(present.max()),
        "mean": float(present.mean()),
        "std": float(present.std()),
    }


def _categorical_reference(values: pd.Series) -> dict[str, Any]:
    counts = values.dropna().astype("string").value_counts(sort=False)
    return {
        "kind": "categorical",
        "count": len(values),
        "null_rate": round(float(values.isna().mean()), 6) if len(values) else 0.0,
        "counts": {str(key): int(counts[key]) for key in sorted(counts.index)},
    }
