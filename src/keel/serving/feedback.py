"""Ground truth for predictions: the serving layer's ``keel_feedback`` table.

The server receives it (``POST /v1/feedback``) and ``keel feedback load`` stores a file of
it; the monitoring layer reads it for realised performance. Other layers read and write
the table only through these two functions. One row per prediction id: a later report
replaces an earlier one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from keel.serving.tables import feedback

if TYPE_CHECKING:
    from keel.store.metadata import MetadataStore

__all__ = ["read_feedback", "replace_feedback"]

_CHUNK = 500  # prediction ids per IN (...) list


def feedback_since(store: MetadataStore, since: float) -> list[tuple[str, Any]]:
    """``(prediction_id, label)`` of the feedback received at or after ``since``."""
    query = sa.select(feedback.c.prediction_id, feedback.c.label).where(
        feedback.c.received_at >= since
    )
    with store.begin() as connection:
        return [(str(pid), label) for pid, label in connection.execute(query)]


def read_feedback(
    store: MetadataStore,
    ids: Sequence[str],
    columns: Sequence[str] = ("label", "value", "received_at"),
) -> list[tuple[Any, ...]]:
    """``(prediction_id, *columns)`` of the feedback stored for these prediction ids
    (``label``, ``value``, ``received_at``, ``key_id``); ids without feedback are absent."""
    selected = [feedback.c.prediction_id, *(feedback.c[name] for name in columns)]
    found: list[tuple[Any, ...]] = []
    with store.begin() as connection:
        for start in range(0, len(ids), _CHUNK):
            chunk = list(ids[start : start + _CHUNK])
            query = sa.select(*selected).where(feedback.c.prediction_id.in_(chunk))
            found.extend(tuple(row) for row in connection.execute(query))
    return found


def replace_feedback(store: MetadataStore, rows: Sequence[Mapping[str, Any]]) -> None:
    """Store these feedback rows in one transaction, each replacing what was stored for
    its prediction id (``received_at`` is required; ``value`` and ``key_id`` may be None)."""
    if not rows:
        return
    ids = [str(row["prediction_id"]) for row in rows]
    with store.begin() as connection:
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            connection.execute(sa.delete(feedback).where(feedback.c.prediction_id.in_(chunk)))
        connection.execute(feedback.insert(), [dict(row) for row in rows])
