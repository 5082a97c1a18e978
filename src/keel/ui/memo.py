"""Slow reads kept for a few seconds, so a dashboard open on many screens scans the
prediction log once per interval instead of once per page view."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Memo"]

T = TypeVar("T")


class Memo:
    """Values by key, recomputed once they are older than ``ttl`` seconds."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._values: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, compute: Callable[[], T]) -> T:
        """The fresh value of ``key``, computing it (outside the lock) when stale."""
        with self._lock:
            found = self._values.get(key)
        if found is not None and self._clock() - found[0] < self.ttl:
            value: T = found[1]
            return value
        value = compute()
        with self._lock:
            self._values[key] = (self._clock(), value)
        return value
