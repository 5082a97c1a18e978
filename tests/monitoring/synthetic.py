"""A seeded 25-column population (17 numeric, 8 categorical) with optional planted shifts.

The example generator has only a handful of columns; drift's correctness targets need
25, so the tests draw them here from named distributions, each column with its own
shape (skewed, discrete, bounded, heavy-tailed, rare categories, nulls). Because the
distributions are known exactly, ``population_sketch`` can draw the sketch of a window
of any size (a million rows) without drawing its rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from keel.monitoring.sketch import ColumnSketch, Layout, Sketch

__all__ = ["NUMERIC", "SHIFTED", "population", "population_sketch"]

SHIFTED = ("n0", "n1", "n2", "c0", "c1")
"""The five columns ``population(shift=True)`` moves."""

NUMERIC: dict[str, Any] = {
    "n0": stats.norm(50, 10),
    "n1": stats.norm(0, 1),
    "n2": stats.norm(0, 1),
    **{f"n{i}": stats.norm(10 * i, 1 + i) for i in range(3, 9)},
    "n9": stats.lognorm(0.8, scale=np.exp(3)),
    "n10": stats.expon(scale=2.0),
    "n11": stats.uniform(0, 1),
    "n12": stats.poisson(3),
    "n13": stats.randint(18, 90),
    "n14": stats.gamma(2.0, scale=3.0),
    "n15": stats.t(5),
    "n16": stats.beta(2, 5),
}
NULL_SHARE = {"n14": 0.02}

CATEGORIES = {
    "c0": (["a", "b", "c", "d"], [0.40, 0.30, 0.20, 0.10]),
    "c1": (["north", "south", "east", "west"], [0.25, 0.25, 0.25, 0.25]),
    "c2": (["basic", "standard", "premium"], [0.6, 0.3, 0.1]),
    "c3": (["x", "y"], [0.9, 0.1]),
    "c4": ([f"k{i}" for i in range(8)], [0.3, 0.2, 0.15, 0.1, 0.1, 0.1, 0.04, 0.01]),
    "c5": (["yes", "no"], [0.5, 0.5]),
    "c6": (["p", "q", "r", "s", "t"], [0.35, 0.35, 0.2, 0.095, 0.005]),
    "c7": (["m", "f", "o"], [0.49, 0.49, 0.02]),
}


def population(
    rows: int, seed: int, *, shift: bool = False, tiny_shift: float = 0.0
) -> pd.DataFrame:
    """``rows`` draws; ``shift`` plants the five shifts (n0 mean +0.5 sd, n1 sd x2, n2 a
    20% bump at +3 sd, c0 share of "a" 0.40 -> 0.30, c1 10% of a never-seen region);
    ``tiny_shift`` moves every continuous numeric column by that many standard deviations
    and that share of a discrete column's rows up by one (shifting a count by a fraction
    would make values it cannot take)."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for name, dist in NUMERIC.items():
        values = dist.rvs(size=rows, random_state=rng).astype(float)
        if _discrete(dist):
            values = values + (rng.random(rows) < tiny_shift)
        else:
            values = values + tiny_shift * dist.std()
        values[rng.random(rows) < NULL_SHARE.get(name, 0.0)] = np.nan
        data[name] = values
    for name, (values, shares) in CATEGORIES.items():
        data[name] = rng.choice(values, rows, p=shares).astype(object)
    if shift:
        _plant(data, rng, rows)
    return pd.DataFrame(data)


def _plant(data: dict[str, Any], rng: np.random.Generator, rows: int) -> None:
    data["n0"] = data["n0"] + 5.0
    data["n1"] = data["n1"] * 2.0
    data["n2"] = data["n2"] + np.where(rng.random(rows) < 0.2, 3.0, 0.0)
    moved = (data["c0"] == "a") & (rng.random(rows) < 0.25)
    data["c0"][moved] = "b"
    data["c1"][rng.random(rows) < 0.10] = "unseen-region"


def population_sketch(layout: Layout, rows: int, seed: int, *, tiny_shift: float) -> Sketch:
    """The sketch of ``rows`` unshifted-categorical rows whose numeric columns moved by
    ``tiny_shift`` sd, drawn from exact bucket probabilities (no rows are made)."""
    rng = np.random.default_rng(seed)
    columns = {}
    for name, bins in layout.columns.items():
        if bins.kind == "numeric":
            dist, edges = NUMERIC[name], np.asarray(bins.edges)
            if _discrete(dist):  # P(X < edge) of integers: F(ceil(edge) - 1)
                below = np.ceil(edges) - 1
                cdf = (1 - tiny_shift) * dist.cdf(below) + tiny_shift * dist.cdf(below - 1)
            else:
                cdf = dist.cdf(edges - tiny_shift * dist.std() - 1e-12)
            probs = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
            nulls = rng.binomial(rows, NULL_SHARE.get(name, 0.0))
        else:
            values, shares = CATEGORIES[name]
            lookup = dict(zip(values, shares, strict=True))
            probs = np.array([lookup.get(c, 0.0) for c in bins.labels()])
            nulls = 0
        counts = rng.multinomial(rows - nulls, probs / probs.sum()).astype(np.int64)
        columns[name] = ColumnSketch(counts, int(nulls))
    return Sketch(columns)


def _discrete(dist: Any) -> bool:
    return isinstance(dist.dist, stats.rv_discrete)
