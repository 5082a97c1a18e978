"""Train/test splits as pure functions of row count (or a time column) and a seed.

``held_out_positions`` and ``held_out`` are ``random_split`` for rows that are never in
one place: the first gives the held-out positions alone (computed once, on a worker), the
second which rows of one partition, at global positions ``start``..``stop``, they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Indices", "held_out", "held_out_positions", "random_split", "time_split"]

Indices = npt.NDArray[np.int64]


def _test_count(rows: int, test_size: float) -> int:
    return min(max(1, round(rows * test_size)), rows - 1)


def random_split(rows: int, test_size: float, seed: int) -> tuple[Indices, Indices]:
    """Shuffle with ``seed``; the first ``test_size`` share is held out. Both sorted."""
    order = np.random.default_rng(seed).permutation(rows)
    n_test = _test_count(rows, test_size)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def time_split(times: pd.Series, test_size: float) -> tuple[Indices, Indices]:
    """The latest ``test_size`` share of rows (by ``times``, ties in row order) is held out."""
    order = np.argsort(times.to_numpy(), kind="stable")
    n_test = _test_count(len(order), test_size)
    cut = len(order) - n_test
    return np.sort(order[:cut]), np.sort(order[cut:])


def held_out_positions(rows: int, test_size: float, seed: int) -> Indices:
    """The held-out positions of ``random_split(rows, test_size, seed)``, sorted."""
    order = np.random.default_rng(seed).permutation(rows)
    return np.sort(order[: _test_count(rows, test_size)])


def held_out(positions: Indices, start: int, stop: int) -> npt.NDArray[np.bool_]:
    """Which rows at global positions ``start``..``stop`` are among sorted ``positions``."""
    inside = positions[np.searchsorted(positions, start) : np.searchsorted(positions, stop)]
    mask = np.zeros(stop - start, dtype=bool)
    mask[inside - start] = True
    return mask
