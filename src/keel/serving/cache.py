"""The response cache and the last-good store, keyed by canonical input.

``canonical(row)`` is the row's JSON with sorted keys: the same input spelled in any key
order is one entry. ``MemoryCache`` keeps entries for a TTL in this process;
``RedisCache`` shares them between replicas. ``LastGood`` remembers the latest model
answer per input (or entity) for the ``cache`` step of the fallback chain, with no TTL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import orjson

__all__ = ["LastGood", "MemoryCache", "RedisCache", "ResponseCache", "canonical"]


def canonical(row: dict[str, Any]) -> bytes:
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS)


class ResponseCache(Protocol):
    """Where answers are kept for ``ttl`` seconds."""

    async def get(self, key: bytes) -> dict[str, Any] | None: ...

    async def set(self, key: bytes, value: dict[str, Any]) -> None: ...


class MemoryCache:
    """An in-process TTL cache holding at most ``max_entries`` (oldest dropped first)."""

    def __init__(
        self,
        ttl: float,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[bytes, tuple[float, dict[str, Any]]] = {}

    async def get(self, key: bytes) -> dict[str, Any] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] < self._clock():
            self._entries.pop(key, None)
            return None
        return entry[1]

    async def set(self, key: bytes, value: dict[str, Any]) -> None:
        entries = self._entries
        entries.pop(key, None)
        entries[key] = (self._clock() + self.ttl, value)
        if len(entries) > self.max_entries:
            del entries[next(iter(entries))]

    def __len__(self) -> int:
        return len(self._entries)


class RedisCache:
    """A TTL cache in Redis, shared by every replica."""

    def __init__(self, url: str, ttl: float, prefix: str = "keel:cache:") -> None:
        from redis import asyncio as aioredis

        self.client = aioredis.from_url(url)
        self.ttl_ms = max(1, int(ttl * 1000))
        self.prefix = prefix.encode()

    async def get(self, key: bytes) -> dict[str, Any] | None:
        raw = await self.client.get(self.prefix + key)
        return None if raw is None else dict(orjson.loads(raw))

    async def set(self, key: bytes, value: dict[str, Any]) -> None:
        await self.client.set(self.prefix + key, orjson.dumps(value), px=self.ttl_ms)

    async def close(self) -> None:
        await self.client.aclose()


class LastGood:
    """The latest good answer per key, at most ``max_entries`` of them."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[Any, Any] = {}

    def remember(self, key: Any, value: Any) -> None:
        entries = self._entries
        entries.pop(key, None)
        entries[key] = value
        if len(entries) > self.max_entries:
            del entries[next(iter(entries))]

    def recall(self, key: Any) -> Any:
        return self._entries.get(key)
