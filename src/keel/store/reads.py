"""Reading the metadata store without opening it for writing: the layers' read functions.

``reading(url)`` connects to the store a project's ``store_url`` names and yields a
connection, or None when there is nothing to read yet (no SQLite file, or no registry
table). It never creates a file, migrates or writes: ``keel status`` on a fresh project
leaves it as it was. A SQLite file is opened read-only; PostgreSQL gets the store's
connect timeout. Alembic and the pool of ``MetadataStore`` are not needed, so a read costs
SQLAlchemy Core and one connection.

Each layer's read functions take a ``sa.Connection`` and its own tables, and use
``has_table`` where an older store may not have them yet, ``rows`` and ``first`` to get
plain dicts back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.pool import NullPool

from keel.errors import MissingExtraError, StoreUnavailable

__all__ = ["CONNECT_TIMEOUT_S", "first", "has_table", "reading", "rows"]

CONNECT_TIMEOUT_S = 5  # as keel.store.metadata's, so a wrong URL fails in seconds


@contextmanager
def reading(url: str, needs: sa.Table | None = None) -> Iterator[sa.Connection | None]:
    """A read-only connection to the store at ``url``; None when it holds nothing yet
    (no SQLite file, or no ``needs`` table). An unreachable or unreadable store raises
    ``StoreUnavailable``."""
    engine = _engine(url)
    if engine is None:
        yield None
        return
    try:
        with engine.connect() as connection:
            yield None if needs is not None and not has_table(connection, needs) else connection
    except exc.DBAPIError as error:
        raise _unavailable(url, error) from None
    finally:
        engine.dispose()


def has_table(connection: sa.Connection, table: sa.Table) -> bool:
    """Whether the store has ``table`` (an older store may not have a newer layer's)."""
    return sa.inspect(connection).has_table(table.name)


def rows(connection: sa.Connection, statement: sa.Executable) -> list[dict[str, Any]]:
    """Every row of ``statement`` as a dict keyed by column label."""
    return [dict(row._mapping) for row in connection.execute(statement)]


def first(connection: sa.Connection, statement: sa.Executable) -> dict[str, Any] | None:
    """The first row of ``statement`` as a dict, or None."""
    row = connection.execute(statement).first()
    return None if row is None else dict(row._mapping)


def _engine(url: str) -> sa.Engine | None:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    if url.startswith(("postgresql", "postgres")):
        return _postgres_engine(url)
    from keel.config import mask_url

    raise StoreUnavailable(
        f"unsupported store URL {mask_url(url)}; use sqlite:///path/keel.db or postgresql://..."
    )


def _sqlite_engine(url: str) -> sa.Engine | None:
    database = sa.make_url(url).database
    if not database or database == ":memory:" or not Path(database).is_file():
        return None
    path = Path(database)
    return sa.create_engine(
        "sqlite://",
        creator=lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5),
        poolclass=NullPool,
    )


def _postgres_engine(url: str) -> sa.Engine:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise MissingExtraError("psycopg", "postgres") from None
    parsed = sa.make_url(url).set(drivername="postgresql+psycopg")
    return sa.create_engine(
        parsed, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}, poolclass=NullPool
    )


def _unavailable(url: str, error: exc.DBAPIError) -> StoreUnavailable:
    from keel.config import mask_url

    reason = str(error.orig or error).strip().splitlines()[0]
    return StoreUnavailable(f"cannot read the metadata store {mask_url(url)} ({reason})")
