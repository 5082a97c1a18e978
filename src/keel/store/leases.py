"""Named leases: at most one holder per job name, expiring if the holder dies.

A lease is a row with a holder, a fencing token and an expiry time. Acquiring is one
conditional UPDATE (take it over if expired or already ours) or, for a new name, one
INSERT that the primary key makes race-free. ``hold`` renews the lease from a background
thread while the job runs, so only a dead holder's lease ever expires.

Expiry is read on the database's clock, not the caller's: a process whose clock is
minutes ahead would otherwise see every other holder's lease as expired and take it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import exc

from keel.errors import LeaseHeld
from keel.store.tables import leases as table

__all__ = ["Lease", "Leases", "default_holder"]


def default_holder() -> str:
    """``host:pid:random``, unique per call so two threads never share a lease."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    token: int
    expires_at: float


class Leases:
    """Acquire, renew and release named leases in the metadata store."""

    def __init__(self, engine: sa.Engine, clock: Callable[[], float] | None = None) -> None:
        """``clock``: seconds since the epoch; by default the database's own clock."""
        self._engine = engine
        self._clock = clock

    def acquire(self, name: str, holder: str, ttl: float) -> Lease | None:
        """Take the lease if it is free, expired or already ours; else return None."""
        with self._engine.begin() as connection:
            now = self._now(connection)
            taken = connection.execute(
                table.update()
                .where(table.c.name == name)
                .where(sa.or_(table.c.expires_at <= now, table.c.holder == holder))
                .values(
                    holder=holder, token=table.c.token + 1, acquired_at=now, expires_at=now + ttl
                )
            )
            if taken.rowcount == 1:
                return self._read(connection, name)
        return self._insert(name, holder, ttl)

    def renew(self, lease: Lease, ttl: float) -> Lease:
        """Extend a lease we still hold; raise ``LeaseHeld`` if it was lost."""
        with self._engine.begin() as connection:
            now = self._now(connection)
            renewed = connection.execute(
                table.update()
                .where(table.c.name == lease.name)
                .where(table.c.holder == lease.holder)
                .where(table.c.token == lease.token)
                .values(expires_at=now + ttl)
            )
        if renewed.rowcount != 1:
            raise LeaseHeld(f"lost the lease on '{lease.name}' to another holder; stop this run")
        return Lease(lease.name, lease.holder, lease.token, now + ttl)

    def release(self, lease: Lease) -> None:
        """Give the lease up now (a no-op if someone else has taken it since)."""
        with self._engine.begin() as connection:
            connection.execute(
                table.update()
                .where(table.c.name == lease.name)
                .where(table.c.holder == lease.holder)
                .where(table.c.token == lease.token)
                .values(expires_at=self._now(connection))
            )

    def current(self, name: str) -> Lease | None:
        """The lease's current row, live or expired, if it was ever taken."""
        with self._engine.connect() as connection:
            return self._read(connection, name)

    @contextmanager
    def hold(self, name: str, ttl: float = 60.0, holder: str | None = None) -> Iterator[Lease]:
        """Hold ``name`` for the block, renewing it every ttl/3; ``LeaseHeld`` if busy."""
        lease = self.acquire(name, holder or default_holder(), ttl)
        if lease is None:
            raise self._busy(name)
        stop = threading.Event()
        renewer = threading.Thread(target=self._keep, args=(lease, ttl, stop), daemon=True)
        renewer.start()
        try:
            yield lease
        finally:
            stop.set()
            renewer.join()
            self.release(lease)

    def _keep(self, lease: Lease, ttl: float, stop: threading.Event) -> None:
        while not stop.wait(ttl / 3):
            try:
                lease = self.renew(lease, ttl)
            except (LeaseHeld, exc.SQLAlchemyError):
                return  # the job notices through its fencing token or its next write

    def _now(self, connection: sa.Connection) -> float:
        """Seconds since the epoch on the given clock, else on the database server's."""
        if self._clock is not None:
            return self._clock()
        dialect = connection.dialect.name
        if dialect == "postgresql":
            query = sa.select(sa.func.extract("epoch", sa.func.clock_timestamp()))
        elif dialect == "sqlite":  # the same machine's clock: julian days to UNIX seconds
            query = sa.select(sa.literal_column("(julianday('now') - 2440587.5) * 86400.0"))
        else:
            return time.time()
        return float(connection.execute(query).scalar_one())

    def _insert(self, name: str, holder: str, ttl: float) -> Lease | None:
        try:
            with self._engine.begin() as connection:
                now = self._now(connection)
                connection.execute(
                    table.insert().values(
                        name=name, holder=holder, token=1, acquired_at=now, expires_at=now + ttl
                    )
                )
        except exc.IntegrityError:
            return None
        return Lease(name, holder, 1, now + ttl)

    def _read(self, connection: sa.Connection, name: str) -> Lease | None:
        row = connection.execute(sa.select(table).where(table.c.name == name)).one_or_none()
        if row is None:
            return None
        return Lease(row.name, row.holder, row.token, row.expires_at)

    def _busy(self, name: str) -> LeaseHeld:
        current = self.current(name)
        until = "" if current is None else _when(current.expires_at)
        who = "" if current is None else f" by {current.holder}"
        return LeaseHeld(
            f"'{name}' is already running (held{who}{until}); wait for it or retry later"
        )


def _when(timestamp: float) -> str:
    return f" until {datetime.fromtimestamp(timestamp, UTC):%Y-%m-%d %H:%M:%S} UTC"
