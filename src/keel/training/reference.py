"""Reference statistics of features and predictions: what monitoring compares against.

Numeric columns get decile bin edges with the count in each bin, range, mean and null
rate; categorical columns get their category counts and null rate. Pure functions of the
held-out frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["numeric_reference", "reference_statistics"]

_QUANTILES = np.linspace(0, 1, 11)


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
    """Decile edges, counts per bin, range, mean and null rate of a numeric array."""
    present = values[~np.isnan(values)]
    null_rate = 1 - len(present) / len(values) if len(values) else 0.0
    if len(present) == 0:
        return {"kind": "numeric", "count": len(values), "null_rate": null_rate, "edges": []}
    edges = np.unique(np.quantile(present, _QUANTILES))
    counts = np.histogram(present, bins=edges)[0] if len(edges) > 1 else np.array([len(present)])
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
