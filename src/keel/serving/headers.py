"""A connection gets ``serving.header_timeout`` to send a request's headers, then is closed.

uvicorn times idle keep-alive connections and Keel times slow bodies (408), but nothing
times a request's headers: a client sending them a byte at a time ("slowloris") holds its
connection, and a few hundred such clients hold the server. ``HeaderTimeoutProtocol`` is
uvicorn's HTTP protocol (httptools when installed, as with uvicorn[standard], else h11)
with one timer more. It starts when a connection opens and when
the first byte of a next request arrives on a kept-alive one, stops when the headers are
complete, and closes the connection if it fires first. uvicorn is handed the class by its
import path (``--workers`` pickles the config); the timeout comes from ``HEADER_TIMEOUT_ENV``.
"""

from __future__ import annotations

import asyncio
import os

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "DEFAULT_HEADER_TIMEOUT_S",
    "HEADER_TIMEOUT_ENV",
    "H11HeaderTimeout",
    "HeaderDeadline",
    "HeaderTimeoutProtocol",
]

HEADER_TIMEOUT_ENV = "KEEL_HEADER_TIMEOUT_S"
DEFAULT_HEADER_TIMEOUT_S = 10.0


def header_timeout() -> float:
    """Seconds a connection gets to send a request's headers (``HEADER_TIMEOUT_ENV``)."""
    return float(os.environ.get(HEADER_TIMEOUT_ENV, DEFAULT_HEADER_TIMEOUT_S))


class HeaderDeadline:
    """Closes ``transport`` ``seconds`` after ``start()`` unless ``stop()`` came first."""

    def __init__(self, transport: asyncio.BaseTransport, seconds: float) -> None:
        self.transport = transport
        self.seconds = seconds
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Start the clock, unless it runs already (a request's later bytes don't reset it)."""
        if self._timer is None and not self.transport.is_closing():
            self._timer = asyncio.get_running_loop().call_later(self.seconds, self._expire)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        self.transport.close()


class _HeaderClock:
    """What both protocols add at a connection's ends: a deadline armed when it opens and
    dropped when it closes; each protocol starts and stops it around a request's headers."""

    _deadline: HeaderDeadline | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._deadline = HeaderDeadline(transport, header_timeout())
        self._deadline.start()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.stop()
        super().connection_lost(exc)  # type: ignore[misc]


class H11HeaderTimeout(_HeaderClock, H11Protocol):
    """uvicorn's h11 protocol: the clock runs while h11 still waits for a request (IDLE)."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._deadline is None:
            return
        if self.conn.their_state is h11.IDLE:
            self._deadline.start()
        else:
            self._deadline.stop()


HeaderTimeoutProtocol: type[asyncio.Protocol]

try:
    import httptools  # noqa: F401 - uvicorn's faster parser, there with uvicorn[standard]
except ImportError:  # pragma: no cover - uvicorn without its extras
    HeaderTimeoutProtocol = H11HeaderTimeout
else:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HttpToolsHeaderTimeout(_HeaderClock, HttpToolsProtocol):
        """uvicorn's httptools protocol; the parser's own callbacks start and stop the clock."""

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._deadline is not None:
                self._deadline.start()

        def on_headers_complete(self) -> None:
            if self._deadline is not None:
                self._deadline.stop()
            super().on_headers_complete()

    HeaderTimeoutProtocol = HttpToolsHeaderTimeout
