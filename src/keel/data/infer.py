"""Propose a checks section from a sample, for the user to edit (like TFDV's schema
inference): types, not-null or a null-rate ceiling, observed ranges, allowed categories,
unique keys and no future timestamps."""

from __future__ import annotations

import math
from typing import Any

from keel.data.batch import TABLE, Batch, quote
from keel.data.model import ColumnProfile, Profile
from keel.data.profiling import profile

__all__ = ["infer_checks", "propose"]

_CATEGORY_SHARE = 0.05
"""A text column is a category when its distinct values are at most this share of rows."""


def infer_checks(batch: Batch) -> dict[str, Any]:
    """A ``checks:`` mapping that the sample in ``batch`` passes."""
    summary = profile(batch)
    unique = {c.name for c in summary.columns if _could_be_key(c) and _is_unique(batch, c.name)}
    return propose(summary, unique)


def propose(summary: Profile, unique: set[str]) -> dict[str, Any]:
    """The proposal from a profile and the columns known to hold unique values (pure)."""
    return {"columns": {c.name: _column(c, c.name in unique) for c in summary.columns}}


def _column(column: ColumnProfile, unique: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": _type(column)}
    if column.nulls == 0:
        spec["not_null"] = True
    else:
        spec["max_null_rate"] = min(1.0, math.ceil(column.null_rate * 200) / 100)
    if unique:
        spec["unique"] = True
    if column.kind in ("int", "float") and column.min is not None:
        spec["range"] = [column.min, column.max]
    if spec["type"] == "category":
        spec["allowed"] = sorted(value for value, _ in column.top)
    if column.kind == "timestamp":
        spec["not_future"] = True
    return spec


def _type(column: ColumnProfile) -> str:
    few = len(column.top) <= max(2, _CATEGORY_SHARE * column.count)
    if column.kind == "string" and column.top_complete and few:
        return "category"
    return column.kind if column.kind != "other" else "string"


def _could_be_key(column: ColumnProfile) -> bool:
    filled = column.count - column.nulls
    return column.kind in ("string", "int") and filled > 1 and column.distinct >= 0.9 * filled


def _is_unique(batch: Batch, name: str) -> bool:
    col = quote(name)
    dupes = batch.scalar(f"SELECT count({col}) - count(DISTINCT {col}) FROM {TABLE}")
    return int(dupes or 0) == 0
