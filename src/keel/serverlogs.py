"""The server's logs: uvicorn's text lines, or one JSON object per line with a request id.

``serving.log_format: json`` is for log pipelines (Loki, Elasticsearch, CloudWatch): every
line on stderr is one JSON object, formatted by python-json-logger, with uvicorn's access
log switched on, one line per request. Every request gets an id: the ``X-Request-ID`` it
came with when that is a sane token, else a fresh one. The response returns it in
``X-Request-ID``, and every line logged while the request is handled (its access line
included) carries it as ``request_id``, so the load balancer's, the client's and the
server's records of one request join on it.

The id lives in a context variable that ``RequestIds`` sets around the app: uvicorn runs
each request in its own task and writes the access line inside the app's ``send``, so the
line sees the id of its own request and of no other.
"""

from __future__ import annotations

import logging
import random
import re
import sys
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # keel.serving's import is heavy: see json_handler
    from keel.serving.http import Message, Receive, Scope, Send

__all__ = ["REQUEST_ID_HEADER", "RequestIds", "current_request_id", "request_id_for"]

REQUEST_ID_HEADER = b"x-request-id"
LogFormat = Literal["text", "json"]

# ids a proxy or client may send: printable, no spaces or quotes, short enough for a log
_SANE = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")
_request_id: ContextVar[str | None] = ContextVar("keel_request_id", default=None)


def request_id_for(presented: bytes | None) -> str:
    """The id of a request: the one it presented when sane, else 32 fresh random hex digits.

    An id names a request, it guards nothing, so ``random`` serves: a tenth of the cost
    of ``uuid4`` (a system call per request) on the hot path.
    """
    if presented is not None and _SANE.fullmatch(presented):
        return presented.decode("ascii")
    return f"{random.getrandbits(128):032x}"


def current_request_id() -> str | None:
    """The id of the request being handled in this context, if any."""
    return _request_id.get()


class RequestIds:
    """ASGI middleware: give each HTTP request its id and return it in the response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_for(_header(scope, REQUEST_ID_HEADER))
        echoed = (REQUEST_ID_HEADER, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), echoed]}
            await send(message)

        token = _request_id.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _request_id.reset(token)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


# -- logging set-up ----------------------------------------------------------------------


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request it was logged for (or null)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class AccessFields(logging.Filter):
    """Spreads an access line's arguments into fields a log pipeline can query."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            record.client, record.method, record.path, _, record.status = args
        return True


def json_handler() -> logging.Handler:
    """The stderr handler of every server process when ``log_format`` is json.

    It also routes Python warnings through logging, so that they too come out as JSON.
    uvicorn builds it in each worker process before the worker answers its supervisor's
    health pings, which is why this module lives outside ``keel.serving``: importing that
    package takes seconds, and a worker silent for 5 s is killed and started again.
    """
    from pythonjsonlogger.core import RESERVED_ATTRS
    from pythonjsonlogger.json import JsonFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "{levelname}{name}{message}",
            style="{",
            timestamp="time",
            rename_fields={"levelname": "level", "name": "logger"},
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],  # uvicorn's ANSI copy of a message
        )
    )
    handler.addFilter(RequestIdFilter())
    logging.captureWarnings(True)
    return handler


def server_logging(log_format: LogFormat) -> dict[str, Any]:
    """uvicorn.Config's logging settings for a log format.

    text keeps uvicorn's own lines at warning level and no access log; json sends every
    logger through ``json_handler``, with start-up lines and one access line per request.
    """
    if log_format == "text":
        from uvicorn.config import LOGGING_CONFIG

        return {"log_config": LOGGING_CONFIG, "log_level": "warning", "access_log": False}
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"access": {"()": f"{__name__}.AccessFields"}},
        "handlers": {"stderr": {"()": f"{__name__}.json_handler"}},
        "root": {"handlers": ["stderr"], "level": "WARNING"},
        "loggers": {
            "keel": {"level": "INFO"},
            "uvicorn": {"level": "INFO"},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"level": "INFO", "filters": ["access"]},
        },
    }
    return {"log_config": config, "log_level": None, "access_log": True}
