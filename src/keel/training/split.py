"""Train/test splits as pure functions of row count (or a time column) and a seed.

The rest is the same two rules for rows that are never in one place (partitions on Dask
workers, ``keel.training.workers``):

- ``random_split``: ``held_out_positions`` gives the held-out positions alone (computed
  once, on a worker) and ``held_out`` which rows of one partition, at global positions
  ``start``..``stop``, they are;
- ``time_split``: ``time_keys`` turns a partition's times into integers in the order the
  split sorts them (missing times last), ``kth_key`` finds the key of the first held-out
  row in a few passes that count keys at many candidates each, and ``time_held_out``
  picks a partition's held-out rows: keys past that one, and of the rows tied with it,
  those after the first ``ties_kept`` in row order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from keel.errors import TrainingDataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Indices",
    "as_times",
    "held_out",
    "held_out_count",
    "held_out_positions",
    "kth_key",
    "random_split",
    "time_held_out",
    "time_keys",
    "time_split",
]

Indices = npt.NDArray[np.int64]
_LOWEST, _LAST = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)
_CANDIDATES = 256  # keys counted per pass: a 64-bit range takes 8 passes


def held_out_count(rows: int, test_size: float) -> int:
    """How many of ``rows`` rows either split holds out: at least one, and not all."""
    return min(max(1, round(rows * test_size)), rows - 1)


def random_split(rows: int, test_size: float, seed: int) -> tuple[Indices, Indices]:
    """Shuffle with ``seed``; the first ``test_size`` share is held out. Both sorted."""
    order = np.random.default_rng(seed).permutation(rows)
    n_test = held_out_count(rows, test_size)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def time_split(times: pd.Series, test_size: float) -> tuple[Indices, Indices]:
    """The latest ``test_size`` share of rows (by ``times``, ties in row order) is held out."""
    order = np.argsort(times.to_numpy(), kind="stable")
    n_test = held_out_count(len(order), test_size)
    cut = len(order) - n_test
    return np.sort(order[:cut]), np.sort(order[cut:])


def held_out_positions(rows: int, test_size: float, seed: int) -> Indices:
    """The held-out positions of ``random_split(rows, test_size, seed)``, sorted."""
    order = np.random.default_rng(seed).permutation(rows)
    return np.sort(order[: held_out_count(rows, test_size)])


def held_out(positions: Indices, start: int, stop: int) -> npt.NDArray[np.bool_]:
    """Which rows at global positions ``start``..``stop`` are among sorted ``positions``."""
    inside = positions[np.searchsorted(positions, start) : np.searchsorted(positions, stop)]
    mask = np.zeros(stop - start, dtype=bool)
    mask[inside - start] = True
    return mask


def as_times(values: pd.Series) -> pd.Series:
    """Numbers and timestamps as they are; text parsed as timestamps, so order is by time."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return values
    for spelling in ("ISO8601", None):  # ISO first; else one format inferred for all rows
        try:
            return pd.to_datetime(values, format=spelling)
        except (ValueError, TypeError):
            continue
    raise TrainingDataError(
        f"training.split.column '{values.name}' holds values that are not timestamps"
    )


def time_keys(times: pd.Series) -> Indices:
    """Integers in the order ``time_split`` sorts ``times`` (``as_times``' result): equal
    times give equal keys, missing times the largest key, as NumPy sorts NaN and NaT."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(times):
        if getattr(times.dt, "tz", None) is not None:
            times = times.dt.tz_convert("UTC").dt.tz_localize(None)
        keys = np.array(times.to_numpy().view("int64"))
        keys[times.isna().to_numpy()] = _LAST
        return keys
    values = times.to_numpy(dtype="float64", na_value=np.nan) + 0.0  # -0.0 as 0.0
    bits = values.view("int64")
    ordered: Indices = np.where(bits < 0, bits ^ np.int64(_LAST), bits)  # negatives reversed
    ordered[np.isnan(values)] = _LAST
    return ordered


def kth_key(count_at_most: Callable[[Indices], int | Indices], k: int) -> int:
    """The ``k``-th smallest key (from 0) of rows whose keys only ``count_at_most`` sees:
    given candidate keys, it answers how many keys are at most each one."""
    low, high = _LOWEST, _LAST
    while low < high:
        step = -(-(high - low + 1) // _CANDIDATES)
        candidates = [min(low + i * step - 1, high) for i in range(1, _CANDIDATES + 1)]
        counts = np.asarray(count_at_most(np.array(candidates, dtype=np.int64)))
        first = int(np.argmax(counts > k))
        low, high = (candidates[first - 1] + 1 if first else low), candidates[first]
    return low


def time_held_out(
    keys: Indices, cutoff: int, first_tie: int, ties_kept: int
) -> npt.NDArray[np.bool_]:
    """Which rows ``time_split`` holds out, of a partition whose rows have ``keys``:
    those past ``cutoff``, and those at it from the ``ties_kept``-th tie on (in row
    order; ``first_tie`` ties are in earlier partitions)."""
    ties = keys == cutoff
    rank = first_tie + np.cumsum(ties) - 1
    chosen: npt.NDArray[np.bool_] = (keys > cutoff) | (ties & (rank >= ties_kept))
    return chosen
