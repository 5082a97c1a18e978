"""The seam to the training layer: a model version's reference statistics as a Reference.

Training records, per feature of the holdout, decile edges with counts (numeric, with a
bucket of its own for each value that fills a decile and one per value for a few-valued
column, by the rule sketches use) or category counts (categorical), and the same for the
model's scores. This turns them into the layout and sketch drift compares with. They
carry no raw sample, so continuous columns are tested on their bins (KS on decile edges
errs toward "no drift") and MMD cannot run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.monitoring.reference import Reference
from keel.monitoring.sketch import Bins, ColumnSketch, Layout, Sketch

if TYPE_CHECKING:
    from keel.project import Project

__all__ = ["from_model", "from_statistics", "model_label"]


def from_statistics(
    features: Mapping[str, Mapping[str, Any]],
    predictions: Mapping[str, Any] | None = None,
    prediction_column: str | None = None,
) -> Reference:
    """A Reference from training's per-column statistics (``reference.features``)."""
    stats = dict(features)
    if predictions is not None and prediction_column is not None:
        stats[prediction_column] = predictions
    columns, sketches, known = {}, {}, {}
    for name, column in stats.items():
        converted = _numeric(column) if column.get("kind") == "numeric" else _categorical(column)
        if converted is not None:
            columns[name], sketches[name] = converted
            if converted[0].kind == "categorical":
                known[name] = frozenset(converted[0].categories)
    rows = max((int(c.get("count", 0)) for c in stats.values()), default=0)
    singletons = {
        name: sum(int(n) == 1 for n in (stats[name].get("counts") or {}).values()) for name in known
    }
    return Reference(Layout(columns, known), Sketch(sketches), {}, rows, singletons)


def from_model(project: Project, ref: str, prediction_column: str | None = None) -> Reference:
    """The Reference recorded with model version ``ref`` (``production``, ``latest``, ``7``)."""
    from keel.training.registry import Registry

    registry = Registry(project.store)
    record = registry.record(registry.resolve(ref).version)
    reference = record.get("reference") or {}
    return from_statistics(
        reference.get("features") or {}, reference.get("predictions"), prediction_column
    )


def model_label(project: Project, ref: str) -> str:
    """How the prediction log names model version ``ref``: ``churn@7``."""
    from keel.training.registry import Registry

    found = Registry(project.store).resolve(ref)
    return f"{found.name}@{found.version}"


def _nulls(column: Mapping[str, Any]) -> int:
    return round(float(column.get("null_rate", 0.0)) * int(column.get("count", 0)))


def _numeric(column: Mapping[str, Any]) -> tuple[Bins, ColumnSketch] | None:
    edges = list(column.get("edges") or [])
    if not edges:
        return None
    counts = list(column.get("counts") or [])
    if len(edges) == 1:  # one distinct value: one bin around it
        edges, counts = [edges[0], edges[0]], [sum(counts) or int(column.get("count", 0))]
    if edges[-1] <= float(column.get("max", edges[-1])):  # older records end at the max,
        edges[-1] = float(np.nextafter(edges[-1], np.inf))  # which numpy's last bin holds
    sketch = ColumnSketch(np.asarray([0, *counts, 0], np.int64), _nulls(column))
    return Bins("numeric", edges=tuple(float(e) for e in edges)), sketch


def _categorical(column: Mapping[str, Any]) -> tuple[Bins, ColumnSketch] | None:
    counts: Mapping[str, int] = column.get("counts") or {}
    if not counts:
        return None
    order = sorted(counts, key=lambda name: (-counts[name], name))
    sketch = ColumnSketch(np.asarray([*(counts[n] for n in order), 0, 0], np.int64), _nulls(column))
    return Bins("categorical", categories=tuple(order)), sketch
