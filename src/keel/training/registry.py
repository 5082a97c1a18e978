"""The model registry in the metadata store: versions, run records, status, gate decisions.

A thin shell over four tables (``keel.training.tables``). Every status change writes a
history row with who, when and why in the same transaction as the change itself.
Promotions to production run under a lease, so two deploys at once cannot leave two
production models.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from keel.errors import LeaseHeld, RegistryError, VersionNotFound
from keel.store.leases import default_holder
from keel.store.metadata import MetadataStore
from keel.training.tables import gate_decisions, model_events, model_records, model_versions
from keel.training.versions import STATUSES, ModelVersion, StatusEvent

__all__ = ["Registry"]

_DEPLOY_LEASE = "keel:registry:deploy"
_LEASE_WAIT_S = 10.0


class Registry:
    """Register, look up and move model versions."""

    def __init__(self, store: MetadataStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    # -- writing --------------------------------------------------------------------

    def register(self, row: dict[str, Any], record: dict[str, Any], actor: str) -> ModelVersion:
        """Add a candidate version from ``row`` (version columns) and its full run record."""
        now = self._clock()
        values = {**row, "metrics": _dumps(row["metrics"]), "status": "candidate"}
        values |= {"status_at": now, "created_at": now, "created_by": actor}
        with self.store.begin() as connection:
            result = connection.execute(model_versions.insert().values(**values))
            version = _new_id(result)
            connection.execute(
                model_records.insert().values(version=version, record=_dumps(record))
            )
            reason = f"registered from {row['source']}"
            self._event(connection, version, None, "candidate", actor, reason, False, now)
        return self.get(version)

    def transition(
        self,
        version: int,
        to: str,
        actor: str,
        reason: str,
        forced: bool = False,
        expected: str | None = None,
    ) -> ModelVersion:
        """Move ``version`` to status ``to``; production replaces (archives) the current one.

        With ``expected``, the move happens only if the version still has that status (an
        automatic step must not undo what a person did since it looked).
        """
        if to not in STATUSES:
            raise RegistryError(f"'{to}' is not a status; use one of {', '.join(STATUSES)}")
        with self._promotion_lease(), self.store.begin() as connection:
            current = self._row(connection, version)
            if expected is not None and current.status != expected:
                raise RegistryError(
                    f"version {version} is {current.status} now, not {expected}; nothing changed"
                )
            now = self._clock()
            if to == "production":
                self._archive_production(connection, version, actor, now)
            self._set_status(connection, version, current.status, to, now)
            self._event(connection, version, current.status, to, actor, reason, forced, now)
        return self.get(version)

    def record_gate(self, version: int, decision: dict[str, Any], passed: bool, actor: str) -> int:
        """Store a gate decision for ``version``; return its id."""
        with self.store.begin() as connection:
            self._row(connection, version)
            result = connection.execute(
                gate_decisions.insert().values(
                    version=version,
                    at=self._clock(),
                    actor=actor,
                    passed=passed,
                    decision=_dumps(decision),
                )
            )
            connection.execute(
                model_versions.update()
                .where(model_versions.c.version == version)
                .values(gate_passed=passed)
            )
        return _new_id(result)

    # -- reading --------------------------------------------------------------------

    def get(self, version: int) -> ModelVersion:
        with self.store.engine.connect() as connection:
            return self._row(connection, version)

    def resolve(self, ref: str) -> ModelVersion:
        """``latest``, ``production``, ``7``, ``v7`` or ``name@7`` as a version."""
        text = ref.strip().rsplit("@", 1)[-1].removeprefix("v")
        if text in ("latest", "production"):
            found = self.latest() if text == "latest" else self.production()
            if found is None:
                raise VersionNotFound(f"there is no {text} model version yet; run `keel train`")
            return found
        if not text.isdigit():
            raise VersionNotFound(f"'{ref}' is not a model version; use a number or latest")
        return self.get(int(text))

    def latest(self) -> ModelVersion | None:
        query = sa.select(model_versions).order_by(model_versions.c.version.desc()).limit(1)
        return self._first(query)

    def production(self) -> ModelVersion | None:
        query = sa.select(model_versions).where(model_versions.c.status == "production")
        return self._first(query.order_by(model_versions.c.version.desc()).limit(1))

    def versions(self, limit: int = 50, status: str | None = None) -> list[ModelVersion]:
        """Versions newest first, optionally only those with ``status``."""
        query = sa.select(model_versions).order_by(model_versions.c.version.desc()).limit(limit)
        if status is not None:
            query = query.where(model_versions.c.status == status)
        with self.store.engine.connect() as connection:
            return [ModelVersion.from_row(row) for row in connection.execute(query)]

    def record(self, version: int) -> dict[str, Any]:
        query = sa.select(model_records.c.record).where(model_records.c.version == version)
        with self.store.engine.connect() as connection:
            text = connection.execute(query).scalar_one_or_none()
        if text is None:
            raise VersionNotFound(f"model version {version} does not exist")
        loaded: dict[str, Any] = json.loads(text)
        return loaded

    def history(self, version: int) -> list[StatusEvent]:
        columns = [c for c in model_events.c if c.name != "id"]
        query = (
            sa.select(*columns).where(model_events.c.version == version).order_by(model_events.c.id)
        )
        with self.store.engine.connect() as connection:
            return [StatusEvent(**dict(row._mapping)) for row in connection.execute(query)]

    def status_events(
        self, statuses: Sequence[str], *, into_only: bool = False, limit: int | None = 50
    ) -> list[StatusEvent]:
        """Status changes into (or, unless ``into_only``, out of) any of ``statuses``,
        newest first; all of them when ``limit`` is None."""
        into = model_events.c.to_status.in_(statuses)
        touched = into if into_only else sa.or_(into, model_events.c.from_status.in_(statuses))
        columns = [c for c in model_events.c if c.name != "id"]
        query = sa.select(*columns).where(touched).order_by(model_events.c.id.desc()).limit(limit)
        with self.store.engine.connect() as connection:
            return [StatusEvent(**dict(row._mapping)) for row in connection.execute(query)]

    def gate_decision(self, version: int) -> dict[str, Any] | None:
        """The latest recorded gate decision of ``version``, with when and by whom."""
        query = (
            sa.select(gate_decisions)
            .where(gate_decisions.c.version == version)
            .order_by(gate_decisions.c.id.desc())
            .limit(1)
        )
        with self.store.engine.connect() as connection:
            row = connection.execute(query).one_or_none()
        if row is None:
            return None
        decision: dict[str, Any] = json.loads(row.decision)
        return {**decision, "id": row.id, "at": row.at, "actor": row.actor}

    # -- internals ------------------------------------------------------------------

    @contextmanager
    def _promotion_lease(self) -> Iterator[None]:
        """Serialise status changes; a concurrent one waits its turn (up to 10 s)."""
        holder = default_holder()
        deadline = time.monotonic() + _LEASE_WAIT_S
        while (lease := self.store.leases.acquire(_DEPLOY_LEASE, holder, ttl=30)) is None:
            if time.monotonic() > deadline:
                raise LeaseHeld(
                    "another registry change has been running for 10 s; retry in a moment"
                )
            time.sleep(0.05)
        try:
            yield
        finally:
            self.store.leases.release(lease)

    def _first(self, query: sa.Select[Any]) -> ModelVersion | None:
        with self.store.engine.connect() as connection:
            row = connection.execute(query).one_or_none()
        return None if row is None else ModelVersion.from_row(row)

    def _row(self, connection: sa.Connection, version: int) -> ModelVersion:
        query = sa.select(model_versions).where(model_versions.c.version == version)
        row = connection.execute(query).one_or_none()
        if row is None:
            raise VersionNotFound(
                f"model version {version} does not exist; `keel registry list` shows them"
            )
        return ModelVersion.from_row(row)

    def _archive_production(
        self, connection: sa.Connection, version: int, actor: str, now: float
    ) -> None:
        query = sa.select(model_versions.c.version).where(model_versions.c.status == "production")
        for (old,) in connection.execute(query).all():
            if old != version:
                self._set_status(connection, old, "production", "archived", now)
                reason = f"replaced in production by version {version}"
                self._event(connection, old, "production", "archived", actor, reason, False, now)

    def _set_status(
        self, connection: sa.Connection, version: int, old: str, new: str, now: float
    ) -> None:
        connection.execute(
            model_versions.update()
            .where(model_versions.c.version == version)
            .values(status=new, status_at=now)
        )

    def _event(
        self,
        connection: sa.Connection,
        version: int,
        old: str | None,
        new: str,
        actor: str,
        reason: str,
        forced: bool,
        now: float,
    ) -> None:
        connection.execute(
            model_events.insert().values(
                version=version,
                from_status=old,
                to_status=new,
                at=now,
                actor=actor,
                reason=reason,
                forced=forced,
            )
        )


def _dumps(value: Any) -> str:
    return json.dumps(_finite(value), sort_keys=True, default=str, allow_nan=False)


def _finite(value: Any) -> Any:
    """NaN and infinities become null: JSON has no spelling for them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _new_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None  # an INSERT with an autoincrement key always returns it
    return int(key[0])
