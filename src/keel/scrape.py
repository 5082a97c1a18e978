"""A small HTTP server for Prometheus scrapes and Kubernetes probes, on a port of its own.

``keel serve`` (``serving.metrics``) and ``keel worker --metrics-port`` each bind one. It
answers GET and HEAD on the paths it is given, and 404 on every other path, so nothing but
what it names is reachable without a key. The port is bound when the server is built: a
port that is taken fails there, before anything else starts.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Answer", "ScrapeServer", "bind_failure"]

Answer = tuple[int, str, bytes]  # status, content type, body
Route = Callable[[], Answer]


class ScrapeServer:
    """``routes`` (path -> a function giving the answer) served on ``host:port``."""

    def __init__(self, host: str, port: int, routes: Mapping[str, Route]) -> None:
        self.routes = dict(routes)
        self.http = ThreadingHTTPServer((host, port), _handler(self.routes))
        self.http.daemon_threads = True

    def start(self) -> None:
        """Answer requests on a daemon thread, for as long as the process lives."""
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


def bind_failure(error: OSError, host: str, port: int, what: str) -> str:
    """One sentence for a port ``what`` (e.g. ``serving.metrics``) could not listen on."""
    if error.errno == errno.EADDRINUSE:
        reason = "the port is already in use; choose another port or stop what holds it"
    else:
        reason = f"{error.strerror or error}; check the host and port"
    return f"{what} cannot listen on {host}:{port}: {reason}"


def _handler(routes: Mapping[str, Route]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer(body=True)

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_POST(self) -> None:  # and any other method: nothing here takes a body
            status = 405 if self.path.split("?", 1)[0] in routes else 404
            self._send(status, "text/plain", b"not found\n" if status == 404 else b"GET only\n")

        do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

        def _answer(self, body: bool) -> None:
            route = routes.get(self.path.split("?", 1)[0])
            status, kind, payload = route() if route else (404, "text/plain", b"not found\n")
            self._send(status, kind, payload if body else b"", len(payload))

        def _send(self, status: int, kind: str, payload: bytes, length: int | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload) if length is None else length))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes and probes every few seconds would flood the log

    return Handler
