"""The metadata store: one SQLAlchemy engine on SQLite (embedded) or PostgreSQL.

``MetadataStore.open(url)`` connects, checks the database is usable, and applies pending
migrations. SQLite runs in WAL mode so readers never block the writer; the switch to WAL
happens once, under the lock file the migrations use, because two processes converting a
new database at the same moment deadlock and one of them gets "database is locked" at
once, whatever the busy timeout. PostgreSQL is reached with a short connect timeout so a
wrong URL fails in seconds, not minutes.

``open(url, timeout_s=...)`` is for the server: on PostgreSQL its engine bounds the
connect, the wait for a pooled connection and every statement by ``timeout_s``, so no
call a request (or the server's start) makes can hang on an unreachable database. The
database is pinged within that bound; migrations, which may legitimately wait on another
process's lock, run on a separate unbounded engine.

``begin(timeout_s=...)`` is for writes made while answering a request (feedback): on
PostgreSQL they go through a second, small engine whose connect, pool wait and statement
are each bounded by ``timeout_s``, and any failure to reach the database is raised as
``StoreUnavailable`` so the caller can answer 503 at once instead of hanging.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from filelock import FileLock
from sqlalchemy import event, exc

from keel.config import mask_url
from keel.errors import MissingExtraError, ProjectError, StoreCorrupt, StoreUnavailable
from keel.store import migrate
from keel.store.leases import Leases

__all__ = ["CONNECT_TIMEOUT_S", "MetadataStore", "create_engine"]

CONNECT_TIMEOUT_S = 5
_POOL_SIZE = 5  # SQLAlchemy's default, for a store's main engine
_UNREACHABLE = (exc.OperationalError, exc.InterfaceError, exc.TimeoutError)


class MetadataStore:
    """Runs, versions, registry, deployments, alerts, keys and leases live here."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.leases = Leases(engine)
        self._bounded: dict[float, sa.Engine] = {}

    @classmethod
    def open(
        cls, url: str, *, migrate_schema: bool = True, timeout_s: float | None = None
    ) -> MetadataStore:
        """Connect to ``url``, verify it answers, and bring its schema up to date.

        With ``timeout_s``, every wait on a PostgreSQL database is bounded by it (see the
        module's docstring); an unreachable one raises ``StoreUnavailable`` within it.
        """
        engine = create_engine(url, timeout_s=timeout_s)
        try:
            _use_wal(engine)
            if timeout_s is not None:
                _ping(engine)
            if migrate_schema:
                _migrate(url, engine, timeout_s)
            elif timeout_s is None:
                _ping(engine)
        except exc.DatabaseError as error:
            engine.dispose()
            raise _explain(url, error) from None
        return cls(engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def begin(self, timeout_s: float | None = None) -> Iterator[sa.Connection]:
        """A connection inside one transaction, committed on success.

        With ``timeout_s``, reaching the database and each statement are bounded by it, and
        an unreachable database raises ``StoreUnavailable``.
        """
        if timeout_s is None:
            with self.engine.begin() as connection:
                yield connection
            return
        try:
            with self._engine_within(timeout_s).begin() as connection:
                yield connection
        except _UNREACHABLE as error:
            raise _explain(str(self.engine.url), error) from None

    def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the database answers a trivial query."""
        try:
            _ping(self.engine)
        except exc.DatabaseError as error:
            raise _explain(str(self.engine.url), error) from None

    def close(self) -> None:
        for engine in self._bounded.values():
            engine.dispose()
        self.engine.dispose()

    def _engine_within(self, timeout_s: float) -> sa.Engine:
        """The engine whose every wait is bounded by ``timeout_s`` (PostgreSQL), made once.

        SQLite has no network to wait on; its writes keep the main engine.
        """
        if self.dialect != "postgresql":
            return self.engine
        if timeout_s not in self._bounded:
            self._bounded[timeout_s] = _postgres_engine(
                self.engine.url.render_as_string(hide_password=False), timeout_s
            )
        return self._bounded[timeout_s]


def create_engine(url: str, *, timeout_s: float | None = None) -> sa.Engine:
    """An engine for a ``sqlite:///`` or ``postgresql://`` URL, tuned for Keel.

    It connects on first use. With ``timeout_s``, a PostgreSQL engine bounds each wait by it.
    """
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    if url.startswith(("postgresql", "postgres")):
        return _postgres_engine(url, timeout_s, pool_size=_POOL_SIZE)
    raise StoreUnavailable(
        f"unsupported store URL {mask_url(url)}; use sqlite:///path/keel.db or postgresql://..."
    )


def _sqlite_engine(url: str) -> sa.Engine:
    database = sa.make_url(url).database
    if database and database != ":memory:":
        _prepare_sqlite_file(Path(database))
    engine = sa.create_engine(url, connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _prepare_sqlite_file(path: Path) -> None:
    # The file itself is never opened here: closing any descriptor of a SQLite file drops
    # every POSIX lock this process holds on it, which lets another process checkpoint and
    # delete the WAL under our live connections. SQLite reports a non-database file itself.
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ProjectError(
            f"cannot create {path.parent} ({error.strerror}); make the project folder "
            "writable or point store: in keel.yaml at a writable location"
        ) from None


def _use_wal(engine: sa.Engine) -> None:
    """Switch a SQLite file to WAL (it stays so) while no other Keel process can race us.

    Without the right to create the lock file no process can create the database either,
    so there is no race to guard: SQLite itself then says what is wrong.
    """
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return
    lock = FileLock(str(migrate.lock_path(engine)), timeout=60)
    with contextlib.suppress(PermissionError):
        lock.acquire()
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    finally:
        lock.release()  # a no-op when it was never acquired


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _migrate(url: str, engine: sa.Engine, timeout_s: float | None) -> None:
    """Apply pending migrations; a bounded engine hands them to an unbounded one."""
    if timeout_s is None or engine.dialect.name != "postgresql":
        migrate.upgrade(engine)
        return
    unbounded = _postgres_engine(url)
    try:
        migrate.upgrade(unbounded)
    finally:
        unbounded.dispose()


def _postgres_engine(url: str, timeout_s: float | None = None, pool_size: int = 2) -> sa.Engine:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise MissingExtraError("psycopg", "postgres") from None
    parsed = sa.make_url(url).set(drivername="postgresql+psycopg")
    if timeout_s is None:
        return sa.create_engine(
            parsed, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}, pool_pre_ping=True
        )
    ms = max(1, round(timeout_s * 1000))
    engine = sa.create_engine(
        parsed,
        pool_pre_ping=True,
        pool_size=pool_size,
        pool_timeout=timeout_s,
        # libpq counts the connect in whole seconds (at least 2); tcp_user_timeout drops a
        # connection whose sent data the network stops acknowledging
        connect_args={"connect_timeout": max(1, round(timeout_s)), "tcp_user_timeout": ms},
    )
    event.listen(engine, "connect", lambda dbapi, _record: _statement_timeout(dbapi, ms))
    return engine


def _statement_timeout(dbapi_connection: Any, ms: int) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"SET statement_timeout = {int(ms)}")
    cursor.close()
    dbapi_connection.commit()


def _ping(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))


def _explain(
    url: str, error: exc.SQLAlchemyError
) -> StoreUnavailable | StoreCorrupt | ProjectError:
    orig = getattr(error, "orig", None)
    reason = str(orig or error).strip().splitlines()[0]
    if "file is not a database" in reason or "malformed" in reason:
        return StoreCorrupt(
            f"the metadata store {mask_url(url)} is not a SQLite database or is corrupt "
            f"({reason}); move it aside (or restore a backup) and run the command again"
        )
    if "readonly" in reason or "read-only" in reason:
        return ProjectError(
            f"the metadata store {mask_url(url)} is read-only ({reason}); "
            "make the project folder writable"
        )
    return StoreUnavailable(
        f"cannot reach the metadata store at {mask_url(url)} ({reason}); check that the "
        "database is running and that store: in keel.yaml or KEEL_STORE_URL is right"
    )
