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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.monitoring.sketch import Layout, Sketch

if TYPE_CHECKING:
    from keel.compute.engine import Engine
    from keel.data.partitions import Partition
    from keel.monitoring.reference import Reference
    from keel.monitoring.results import DriftReport, DriftSettings

__all__ = ["compare_partitions", "rows_at", "sketch_partition"]


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
        whole = _gather(engine, layout, [(p, None) for p in partitions])
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
    starts = np.concatenate([[0], np.cumsum(sizes)])
    ordered = np.sort(picked)
    owner = np.searchsorted(starts, ordered, side="right") - 1
    items = [(p, ordered[owner == i] - starts[i]) for i, p in enumerate(partitions)]
    gathered = _gather(engine, layout, items)  # rows in ascending global position
    back = np.searchsorted(ordered, picked)
    return {name: values[back] for name, values in gathered.items()}


def _gather(
    engine: Engine, layout: Layout, items: list[tuple[Partition, Any]]
) -> dict[str, np.ndarray]:
    """The columns of every item's rows, partitions in order, concatenated."""
    import pandas as pd

    parts: list[Any] = [None] * len(items)
    for position, arrays in engine.map(rows_at, layout, items):
        parts[position] = arrays
    names = list(dict.fromkeys(name for part in parts for name in part))
    # through pandas, so a column whose partitions disagree on dtype joins as one frame would
    return {
        name: np.asarray(
            pd.concat([pd.Series(part[name]) for part in parts if name in part], ignore_index=True)
        )
        for name in names
    }
