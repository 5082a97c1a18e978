"""The gateway in front of every route, as one ASGI app.

``KeelApp`` answers ``/healthz`` and ``/readyz`` itself, then checks the key, its scope
and its rate limit for every other path (unknown paths included), answers
``POST /v1/predict`` on the raw-ASGI hot path, and hands the rest to FastAPI. It also
runs the ASGI lifespan: the model is loaded and warmed at startup, and at shutdown
(uvicorn has stopped accepting and finished in-flight requests) the prediction log is
flushed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import orjson

from keel.serving.gatekeeper import OPEN_PATHS, is_docs
from keel.serving.http import (
    Headers,
    Receive,
    Scope,
    Send,
    error_body,
    is_json,
    request_headers,
    send_json,
)
from keel.serving.keys import ApiKey
from keel.serving.lifecycle import Lifecycle
from keel.serving.predict import handle_predict
from keel.serving.state import ServerState

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp

__all__ = ["UI_PREFIX", "KeelApp"]

_PREDICT = "/v1/predict"
_NOT_JSON = "send the body as JSON with Content-Type: application/json"
UI_PREFIX = "/ui"


class KeelApp:
    """The ASGI app: gateway, hot predict path, FastAPI for the rest, lifespan."""

    def __init__(
        self,
        state: ServerState,
        api: FastAPI,
        lifecycle: Lifecycle,
        ui: ASGIApp | None = None,
    ) -> None:
        self.state = state
        self.api = api
        self.lifecycle = lifecycle
        self.ui = ui  # the dashboard signs its users in itself (keys, session cookie)

    @property
    def routes(self) -> list[tuple[str, frozenset[str]]]:
        """Every (path, methods) the app answers."""
        found = [("/healthz", frozenset({"GET"})), ("/readyz", frozenset({"GET"}))]
        for route in self.api.routes:
            if getattr(route, "path", None) in OPEN_PATHS:
                continue  # declared in FastAPI for the docs; answered above
            methods = getattr(route, "methods", None) or {"GET"}
            found.append((str(getattr(route, "path", "")), frozenset(methods)))
        return found

    @asynccontextmanager
    async def running(self) -> AsyncIterator[KeelApp]:
        """Start and stop the app around a block (for tests without a lifespan)."""
        await self.lifecycle.start()
        try:
            yield self
        finally:
            await self.lifecycle.stop()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:
            await send({"type": "websocket.close", "code": 1008})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path in OPEN_PATHS:
            await self._health(path, send)
            return
        if self.ui is not None and (path == UI_PREFIX or path.startswith(UI_PREFIX + "/")):
            await self.ui(scope, receive, send)
            return
        started = time.perf_counter()
        if self.state.settings.docs == "public" and is_docs(path):
            await self._api(scope, receive, send, started)
            return
        headers = request_headers(scope)
        verdict = await self._gate(path, headers)
        if not isinstance(verdict, ApiKey):
            status, body, extra = verdict
            await send_json(send, status, body, extra)
            self._count(path, status, None, started)
            return
        if path == _PREDICT:
            if scope["method"] != "POST":
                await send_json(send, 405, error_body("use POST"), [(b"allow", b"POST")])
                self._count(path, 405, None, started)
                return
            unservable = self.state.unservable()
            if unservable is not None:  # the chain would end in none for every row
                await send_json(send, 503, error_body(unservable), [(b"retry-after", b"60")])
                self._count(path, 503, "none", started)
                return
            status, fallback, version = await handle_predict(self.state, headers, receive, send)
            self.state.metrics.request(
                path, status, version, fallback, time.perf_counter() - started
            )
            return
        if scope["method"] == "POST" and not is_json(headers.content_type):
            await send_json(send, 415, error_body(_NOT_JSON))
            self._count(path, 415, None, started)
            return
        scope.setdefault("state", {})["key_id"] = verdict.key_id  # for the routes' records
        await self._api(scope, receive, send, started)

    async def _gate(
        self, path: str, headers: Headers
    ) -> ApiKey | tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """The request's key if it may go ahead, else (status, body, headers) to refuse."""
        gate = self.state.gate
        key = gate.authenticate(headers.api_key)
        if key is None:
            body = error_body("send a valid API key: Authorization: Bearer <key>")
            return 401, body, [(b"www-authenticate", b"Bearer")]
        if not gate.permits(key, path):
            return 403, error_body(f"this key may not use {path[:100]}"), []
        wait = await gate.admit(key)
        if wait is not None:
            self.state.metrics.rate_limited.inc()
            return 429, error_body("rate limit reached"), [(b"retry-after", str(wait).encode())]
        length = headers.content_length
        if length is not None and (length < 0 or length > self.state.settings.max_body_kb * 1024):
            return (
                413,
                error_body(f"the body is larger than {self.state.settings.max_body_kb} KB"),
                [],
            )
        return key

    async def _api(self, scope: Scope, receive: Receive, send: Send, started: float) -> None:
        status = 500

        async def recorded(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.api(
                scope, _capped(receive, self.state.settings.max_body_kb * 1024), recorded
            )
        finally:
            self._count(scope["path"], status, None, started)

    def _count(self, path: str, status: int, fallback: str | None, started: float) -> None:
        route = path if path in _KNOWN else "other"
        version = self.state.served.version
        self.state.metrics.request(route, status, version, fallback, time.perf_counter() - started)

    async def _health(self, path: str, send: Send) -> None:
        if path == "/healthz":
            await send_json(send, 200, b'{"status":"alive"}')
            return
        body = self.readiness()
        await send_json(send, 200 if body["ready"] else 503, orjson.dumps(body))

    def readiness(self) -> dict[str, Any]:
        """What ``/readyz`` answers, and what the dashboard shows as health."""
        state = self.state
        return {
            "ready": state.ready and not state.draining,
            "model": state.served.version,
            "draining": state.draining,
            "prediction_log": state.log is not None,
            "metadata_store": state.metadata_ok,
            "degraded": state.degraded,  # serving without the store (from what it last saw)
            "stand_in_for": state.served.stand_in_for,  # an earlier version answers, marked
        }

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.lifecycle.start()
                except Exception as error:
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.lifecycle.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


_KNOWN = frozenset(
    {"/v1/predict", "/v1/feedback", "/v1/status", "/metrics", "/docs", "/openapi.json"}
)


def _capped(receive: Receive, limit: int) -> Receive:
    """``receive`` that ends the body with a disconnect once it passes ``limit`` bytes."""
    seen = 0

    async def capped() -> Any:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                return {"type": "http.disconnect"}
        return message

    return capped
