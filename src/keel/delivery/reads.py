"""The delivery layer's read functions, for ``keel status`` and other layers."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from keel.delivery.tables import rollouts
from keel.store.reads import first, has_table

__all__ = ["last_rollout"]


def last_rollout(connection: sa.Connection) -> dict[str, Any] | None:
    """The newest shadow or canary rollout (``version``, ``kind``, ``share``, ``state``,
    ``updated_at``); None when there is none, or the store has no rollouts table yet."""
    if not has_table(connection, rollouts):
        return None
    columns = ("version", "kind", "share", "state", "updated_at")
    query = (
        sa.select(*[rollouts.c[name] for name in columns])
        .order_by(rollouts.c.updated_at.desc())
        .limit(1)
    )
    return first(connection, query)
