"""The online store: each entity's newest feature row per view, for serving.

One small interface, two backends: SQLite (the embedded default, a file beside the
metadata store) and Redis. Both keep one record per (view, entity): the row's
``feature_ts`` and its values. A write never replaces a newer row with an older one (a row
with the same timestamp is replaced, so late-arriving data corrects it), and
materializing the same window twice leaves the same state. Staleness is judged by the
caller (``keel.features.service``) with the same rule the offline join uses.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from keel.config import mask_url
from keel.errors import FeatureError, MissingExtraError, OnlineStoreUnavailable

__all__ = [
    "Key",
    "OnlineRow",
    "OnlineStore",
    "Record",
    "RedisOnlineStore",
    "SQLiteOnlineStore",
    "open_online_store",
    "stamp",
]


@dataclass(frozen=True)
class OnlineRow:
    feature_ts: datetime
    values: dict[str, Any]


Record = tuple[str, datetime, dict[str, Any]]  # entity id, feature_ts, values
Key = tuple[str, str]  # view, entity id


def stamp(moment: datetime) -> str:
    """Fixed-width ISO time, so stored stamps compare correctly as text."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")


class OnlineStore(Protocol):
    """What serving and materialization need from an online backend."""

    def write(self, view: str, records: Iterable[Record]) -> int:
        """Store rows that are newer than what is held; return how many were written."""

    def read(self, keys: Sequence[Key]) -> dict[Key, OnlineRow]:
        """Rows for the (view, entity) keys that have one, in one round trip."""

    def clear(self, view: str) -> None:
        """Forget every row of a view (after its definition changed)."""

    def close(self) -> None: ...


def _encode(feature_ts: datetime, values: dict[str, Any]) -> bytes:
    return orjson.dumps([stamp(feature_ts), values])


def _decode(blob: bytes | str) -> OnlineRow:
    text, values = orjson.loads(blob)
    return OnlineRow(datetime.fromisoformat(text), values)


class SQLiteOnlineStore:
    """Online rows in a SQLite file (WAL), one connection per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = f"sqlite:///{path}"
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection().execute(
            "CREATE TABLE IF NOT EXISTS keel_online (view TEXT NOT NULL, entity TEXT NOT NULL, "
            "ts TEXT NOT NULL, row BLOB NOT NULL, PRIMARY KEY (view, entity)) WITHOUT ROWID"
        )

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            try:
                connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as error:
                raise OnlineStoreUnavailable(
                    f"cannot open the online store {self.path} ({error})"
                ) from None
            self._local.connection = connection
        return connection

    def write(self, view: str, records: Iterable[Record]) -> int:
        rows = [(view, e, stamp(ts), _encode(ts, v)) for e, ts, v in records]
        connection = self._connection()
        before = connection.total_changes
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO keel_online (view, entity, ts, row) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (view, entity) DO UPDATE SET ts = excluded.ts, row = excluded.row "
            "WHERE excluded.ts >= keel_online.ts",
            rows,
        )
        connection.execute("COMMIT")
        return int(connection.total_changes - before)

    def read(self, keys: Sequence[Key]) -> dict[Key, OnlineRow]:
        connection = self._connection()
        if len(keys) == 1:
            sql = "SELECT view, entity, row FROM keel_online WHERE view = ? AND entity = ?"
            found = connection.execute(sql, keys[0]).fetchall()
        else:
            by_view: dict[str, list[str]] = {}
            for view, entity in keys:
                by_view.setdefault(view, []).append(entity)
            sql = " UNION ALL ".join(
                "SELECT view, entity, row FROM keel_online WHERE view = ? AND entity IN "
                f"({','.join('?' * len(entities))})"
                for entities in by_view.values()
            )
            params = [part for view, ids in by_view.items() for part in (view, *ids)]
            found = connection.execute(sql, params).fetchall()
        return {(view, entity): _decode(row) for view, entity, row in found}

    def clear(self, view: str) -> None:
        self._connection().execute("DELETE FROM keel_online WHERE view = ?", (view,))

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


class RedisOnlineStore:
    """Online rows in Redis: one key per (view, entity), fetched with MGET."""

    def __init__(self, url: str, namespace: str) -> None:
        try:
            import redis
        except ImportError:
            raise MissingExtraError("redis", "redis") from None
        self.location = url
        self._prefix = f"keel:{namespace}:online:"
        self._errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self._client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        # a compare-and-set on the timestamp keeps writes idempotent and never backwards
        self._newer = self._client.register_script(
            "local cur = redis.call('GET', KEYS[1]) "
            "if cur and cjson.decode(cur)[1] > ARGV[1] then return 0 end "
            "redis.call('SET', KEYS[1], ARGV[2]) return 1"
        )

    def _key(self, view: str, entity: str) -> str:
        return f"{self._prefix}{view}:{entity}"

    def write(self, view: str, records: Iterable[Record]) -> int:
        written = 0
        try:
            pipe = self._client.pipeline(transaction=False)
            for count, (entity, ts, values) in enumerate(records, start=1):
                key, row = self._key(view, entity), _encode(ts, values)
                self._newer(keys=[key], args=[stamp(ts), row], client=pipe)
                if count % 1000 == 0:
                    written += sum(int(done) for done in pipe.execute())
            written += sum(int(done) for done in pipe.execute())
        except self._errors as error:
            raise self._unavailable(error) from None
        return written

    def read(self, keys: Sequence[Key]) -> dict[Key, OnlineRow]:
        try:
            blobs = self._client.mget([self._key(view, entity) for view, entity in keys])
        except self._errors as error:
            raise self._unavailable(error) from None
        return {k: _decode(b) for k, b in zip(keys, blobs, strict=True) if b is not None}

    def clear(self, view: str) -> None:
        try:
            keys = list(self._client.scan_iter(match=f"{self._prefix}{view}:*", count=1000))
            if keys:
                self._client.delete(*keys)
        except self._errors as error:
            raise self._unavailable(error) from None

    def close(self) -> None:
        self._client.close()

    def _unavailable(self, error: Exception) -> OnlineStoreUnavailable:
        return OnlineStoreUnavailable(
            f"cannot reach the online store at {mask_url(self.location)} ({error}); "
            "check that Redis is running"
        )


def open_online_store(setting: str, state_dir: Path, namespace: str) -> OnlineStore:
    """The backend named by ``features.online`` in keel.yaml."""
    if setting == "sqlite":
        return SQLiteOnlineStore(state_dir / "online.db")
    if setting.startswith("sqlite:///"):
        return SQLiteOnlineStore(Path(setting.removeprefix("sqlite:///")))
    if setting.startswith(("redis://", "rediss://", "unix://")):
        return RedisOnlineStore(setting, namespace)
    raise FeatureError(
        f"features.online is '{mask_url(setting)}'; use sqlite, sqlite:///path or redis://host:port/db"
    )
