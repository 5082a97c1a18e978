"""The gateway's checks before any route runs: key, scope, rate limit.

Every path except ``/healthz`` and ``/readyz`` needs a key (and, with
``serving.docs: public``, the default, the API docs: ``/docs`` and ``/openapi.json``).
Scopes are looked up by path; a path not listed needs ``admin``, so a route added later
is closed by default.
Rate limits are per key, with the ``limits`` library: in memory for one process, Redis
(``serving.rate_limit_url``) when replicas share the limits. If that storage cannot be
reached, requests are admitted (and a warning logged): the limit protects the model, and
refusing every request would be the outage it protects against.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from keel.serving.keys import ApiKey, KeyRing, allows

__all__ = ["DOCS_PATHS", "OPEN_PATHS", "ROUTE_SCOPES", "Gatekeeper", "is_docs", "scope_for"]

logger = logging.getLogger("keel.serving")

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
ROUTE_SCOPES: dict[str, str | None] = {
    "/v1/predict": "predict",
    "/v1/feedback": "feedback",
    "/v1/status": None,
    "/docs": None,
    "/docs/oauth2-redirect": None,
    "/openapi.json": None,
    "/metrics": "admin",
}


DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/openapi.json"})
DOCS_ASSETS = "/docs/static/"  # Swagger UI's script, style and icon


def is_docs(path: str) -> bool:
    """The API docs: the page, its assets and the document (public with serving.docs)."""
    return path in DOCS_PATHS or path.startswith(DOCS_ASSETS)


def scope_for(path: str) -> str | None:
    """The scope a path needs (None: any valid key); unlisted paths need admin."""
    if path.startswith(DOCS_ASSETS):
        return None
    return ROUTE_SCOPES.get(path, "admin")


class Gatekeeper:
    """Authenticates keys against the key ring and applies each key's rate limit."""

    def __init__(self, keyring: KeyRing, rate_limit: str | None, storage_url: str | None) -> None:
        from limits.aio import storage, strategies
        from limits.storage import storage_from_string

        self.keyring = keyring
        self.default_limit = rate_limit
        store: Any = (
            storage_from_string(_async_url(storage_url), implementation="redispy")
            if storage_url
            else storage.MemoryStorage()
        )
        # a sliding-window counter: O(1) per hit whatever the limit (a moving window keeps
        # every hit of the window, which costs O(limit) per hit and memory at high limits)
        self.limiter = strategies.SlidingWindowCounterRateLimiter(store)
        self._items: dict[str, Any] = {}

    def authenticate(self, presented: str | None) -> ApiKey | None:
        return None if not presented else self.keyring.check(presented)

    @staticmethod
    def permits(key: ApiKey, path: str) -> bool:
        return allows(key.scopes, scope_for(path))

    async def admit(self, key: ApiKey) -> int | None:
        """None if the request may go ahead, else the seconds to wait (Retry-After)."""
        text = key.rate_limit or self.default_limit
        if text is None:
            return None
        item = self._items.get(text)
        if item is None:
            from limits import parse

            item = self._items[text] = parse(text)
        try:
            if await self.limiter.hit(item, key.key_id):
                return None
            stats = await self.limiter.get_window_stats(item, key.key_id)
        except Exception as error:  # limits storage (Redis) down: serve rather than fail
            logger.warning("rate limit storage unavailable, admitting: %r", error)
            return None
        return max(1, math.ceil(stats.reset_time - time.time()))


def _async_url(url: str) -> str:
    return url if url.startswith("async+") else f"async+{url}"
