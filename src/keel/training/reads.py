"""The model registry's read functions, for ``keel status`` and other layers.

Each takes a connection (``keel.store.reads.reading``, or a store's engine) and returns
plain dicts. A version row holds the narrow columns of ``keel_model_versions`` that
status shows, with ``metrics`` still JSON text. Every query is served by an index, so
the answer costs the same with 100,000 versions as with ten.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from keel.store.reads import first, rows
from keel.training.tables import model_events, model_records, model_versions

__all__ = [
    "VERSION_COLUMNS",
    "count_versions",
    "last_event",
    "previous_production_version",
    "read_run_record",
    "read_versions",
]

VERSION_COLUMNS = (
    "version",
    "name",
    "source",
    "status",
    "status_at",
    "created_at",
    "created_by",
    "artifact",
    "size_bytes",
    "data_ref",
    "data_rows",
    "data_start",
    "data_end",
    "metrics",
    "gate_passed",
)


def read_versions(
    connection: sa.Connection,
    *,
    status: str | None = None,
    version: int | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Version rows, newest first: those in ``status``, or ``version`` alone, or all."""
    query = sa.select(*[model_versions.c[name] for name in VERSION_COLUMNS])
    if status is not None:
        query = query.where(model_versions.c.status == status)
    if version is not None:
        query = query.where(model_versions.c.version == version)
    return rows(connection, query.order_by(model_versions.c.version.desc()).limit(limit))


def count_versions(connection: sa.Connection) -> int:
    """How many versions are registered."""
    return int(
        connection.execute(sa.select(sa.func.count()).select_from(model_versions)).scalar_one()
    )


def last_event(
    connection: sa.Connection, version: int, to_status: str | None = None
) -> dict[str, Any] | None:
    """The newest status change of ``version`` (into ``to_status``, if given): ``at``,
    ``actor``, ``reason``, ``forced``."""
    query = sa.select(
        model_events.c.at, model_events.c.actor, model_events.c.reason, model_events.c.forced
    ).where(model_events.c.version == version)
    if to_status is not None:
        query = query.where(model_events.c.to_status == to_status)
    return first(connection, query.order_by(model_events.c.id.desc()).limit(1))


def previous_production_version(connection: sa.Connection, current: int) -> int | None:
    """The last version other than ``current`` that was promoted to production."""
    query = (
        sa.select(model_events.c.version)
        .where(model_events.c.to_status == "production", model_events.c.version != current)
        .order_by(model_events.c.id.desc())
        .limit(1)
    )
    found = connection.execute(query).scalar()
    return None if found is None else int(found)


def read_run_record(connection: sa.Connection, version: int) -> dict[str, Any] | None:
    """The run record of ``version`` (None: it has none)."""
    query = sa.select(model_records.c.record).where(model_records.c.version == version)
    text = connection.execute(query).scalar()
    return None if text is None else dict(json.loads(text))
