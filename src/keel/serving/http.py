"""Raw ASGI helpers for the hot path: read a bounded body, send a JSON response.

The predict route skips Starlette's Request and Response objects: headers are read in
one pass over the ASGI scope, the body is collected with a size cap and a deadline, and
the answer is two ``send`` calls with bytes orjson already produced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

__all__ = [
    "BodyTooLarge",
    "BodyTooSlow",
    "Headers",
    "is_json",
    "read_body",
    "request_headers",
    "send_json",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = b"application/json"


class BodyTooLarge(Exception):
    """The body is longer than the server accepts."""


class BodyTooSlow(Exception):
    """The client did not finish sending its body in time."""


class ClientGone(Exception):
    """The client disconnected before sending its whole body."""


class Headers:
    """The few request headers the gateway reads, found in one pass."""

    __slots__ = ("api_key", "content_length", "content_type")

    def __init__(self) -> None:
        self.api_key: str | None = None
        self.content_type: bytes | None = None
        self.content_length: int | None = None


def request_headers(scope: Scope) -> Headers:
    found = Headers()
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                found.api_key = token.strip()
        elif name == b"x-api-key":
            found.api_key = value.decode("latin-1").strip()
        elif name == b"content-type":
            found.content_type = value
        elif name == b"content-length":
            found.content_length = int(value) if value.isdigit() else -1
    return found


def is_json(content_type: bytes | None) -> bool:
    """Whether the Content-Type is ``application/json``, in any case, with or without
    parameters (``; charset=utf-8``); ``application/jsonfoo`` is another type."""
    if content_type is None:
        return False
    return content_type.partition(b";")[0].strip().lower() == _JSON


async def read_body(receive: Receive, limit: int, timeout: float) -> bytes:
    """The whole body, or BodyTooLarge past ``limit`` bytes / BodyTooSlow past ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            return await _collect(receive, limit)
    except TimeoutError:
        raise BodyTooSlow from None


async def _collect(receive: Receive, limit: int) -> bytes:
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        if len(body) > limit:
            raise BodyTooLarge
        return body
    parts = [body]
    size = len(body)
    while message.get("more_body"):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        parts.append(chunk)
    return b"".join(parts)


async def send_json(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", _JSON), (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def error_body(message: str, detail: Any = None) -> bytes:
    content: dict[str, Any] = {"error": message}
    if detail is not None:
        content["detail"] = detail
    return orjson.dumps(content)
