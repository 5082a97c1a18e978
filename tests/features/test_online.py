"""One contract for every online store backend: SQLite and Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from keel.errors import FeatureError, OnlineStoreUnavailable
from keel.features.online import (
    OnlineStore,
    RedisOnlineStore,
    SQLiteOnlineStore,
    open_online_store,
)
from tests.helpers import Relay

T0 = datetime(2026, 1, 1)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def online(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    """A fresh, empty online store on each backend."""
    if request.param == "sqlite":
        store: OnlineStore = SQLiteOnlineStore(tmp_path / "online.db")
        yield store
        store.close()
        return
    url = request.getfixturevalue("redis_url")
    redis_store = RedisOnlineStore(url, namespace=f"test-{uuid.uuid4().hex}")
    yield redis_store
    for view in ("v", "w"):
        redis_store.clear(view)
    redis_store.close()


def test_read_returns_what_was_written(online: OnlineStore) -> None:
    """A written row comes back with its time and values."""
    online.write("v", [("e1", T0, {"a": 1, "b": "x", "c": None})])
    row = online.read([("v", "e1")])[("v", "e1")]
    assert row.feature_ts == T0
    assert row.values == {"a": 1, "b": "x", "c": None}


def test_unknown_keys_are_absent(online: OnlineStore) -> None:
    """An entity never written is simply not in the answer."""
    online.write("v", [("e1", T0, {"a": 1})])
    assert online.read([("v", "nobody"), ("w", "e1")]) == {}


def test_many_keys_across_views_in_one_call(online: OnlineStore) -> None:
    """One read returns every view and entity asked for."""
    online.write("v", [(f"e{i}", T0, {"a": i}) for i in range(100)])
    online.write("w", [("e1", T0, {"z": True})])
    keys = [("v", f"e{i}") for i in range(100)] + [("w", "e1")]
    found = online.read(keys)
    assert len(found) == 101
    assert found[("v", "e42")].values == {"a": 42}
    assert found[("w", "e1")].values == {"z": True}


def test_older_rows_never_replace_newer(online: OnlineStore) -> None:
    """Writing an older row after a newer one keeps the newer."""
    online.write("v", [("e1", T0 + timedelta(days=1), {"a": 2})])
    online.write("v", [("e1", T0, {"a": 1})])
    assert online.read([("v", "e1")])[("v", "e1")].values == {"a": 2}


def test_same_time_replaces_so_late_data_corrects(online: OnlineStore) -> None:
    """A row with the same timestamp replaces the stored one."""
    online.write("v", [("e1", T0, {"a": 1})])
    online.write("v", [("e1", T0, {"a": 5})])
    assert online.read([("v", "e1")])[("v", "e1")].values == {"a": 5}


def test_writing_the_same_rows_twice_is_idempotent(online: OnlineStore) -> None:
    """The same window written twice leaves the same state."""
    rows = [(f"e{i}", T0, {"a": i}) for i in range(10)]
    online.write("v", rows)
    before = online.read([("v", f"e{i}") for i in range(10)])
    online.write("v", rows)
    assert online.read([("v", f"e{i}") for i in range(10)]) == before


def test_clear_forgets_one_view(online: OnlineStore) -> None:
    """Clearing a view leaves other views alone."""
    online.write("v", [("e1", T0, {"a": 1})])
    online.write("w", [("e1", T0, {"a": 1})])
    online.clear("v")
    assert list(online.read([("v", "e1"), ("w", "e1")])) == [("w", "e1")]


def test_unknown_online_setting_is_refused(tmp_path: Path) -> None:
    """features.online must name a known backend."""
    with pytest.raises(FeatureError, match="use sqlite, sqlite:///path or redis://"):
        open_online_store("cassandra://x", tmp_path, "p")


@pytest.mark.redis
def test_redis_going_away_is_a_clear_error(redis_url: str) -> None:
    """Lookups after Redis disappears raise OnlineStoreUnavailable, which serving catches."""
    proxy = Relay(redis_url)
    namespace = uuid.uuid4().hex
    store = RedisOnlineStore(proxy.url(redis_url), namespace=namespace)
    try:
        store.write("v", [("e1", T0, {"a": 1})])
        assert store.read([("v", "e1")])
        proxy.cut()
        with pytest.raises(OnlineStoreUnavailable, match="cannot reach the online store"):
            store.read([("v", "e1")])
    finally:
        proxy.close()
        store.close()
        direct = RedisOnlineStore(redis_url, namespace=namespace)
        direct.clear("v")  # leave the shared Redis as it was
        direct.close()
