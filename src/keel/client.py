"""Python clients for a running ``keel serve``: ``Client`` (blocking) and ``AsyncClient``.

    >>> with keel.Client("http://127.0.0.1:8000", key) as client:   # doctest: +SKIP
    ...     answer = client.predict({"tenure": 12, "spend": 55.5, "visits": 3})
    ...     client.feedback(answer.prediction_id, 1)

Results are small frozen dataclasses that mirror what the server sends (``Prediction``,
``FeedbackReceipt``, ``ServerStatus``); an error status becomes an ``ApiError`` subclass
that carries the server's own message (see ``keel.errors``).

Retries. A 429 or a 503 means the server did nothing with the request, so every call is
sent again, after the ``Retry-After`` the server names (or an exponential backoff when it
names none), up to ``retries`` more times; a wait longer than ``max_wait`` gives up at
once, saying how long the server asked for. A connection that could not be opened is
retried the same way for every call (nothing was sent). A connection that failed after
the request went out is retried only for idempotent calls: ``status`` (a read) and
``feedback`` (a repeat replaces the earlier report). ``predict`` is not retried then:
each predict is logged under a new prediction id, so a repeat would count twice.

The retry decisions are ``keel.retrying``'s, without I/O, and shared by both clients:
each client only sends and sleeps (httpx sync or async, ``time.sleep`` or
``asyncio.sleep``), and the first attempt, when it succeeds, costs no more than the
request itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
import orjson

from keel.errors import (
    ApiError,
    AuthError,
    InstanceRefused,
    RateLimited,
    RequestRejected,
    ServiceUnavailable,
    UnexpectedResponse,
)
from keel.retrying import Attempts, Outcome, RetryPolicy, next_wait, parse_retry_after

__all__ = [
    "AsyncClient",
    "Client",
    "FeedbackReceipt",
    "Finding",
    "LoadFailure",
    "ModelInfo",
    "Prediction",
    "RetryPolicy",
    "ServerStatus",
    "batched",
    "next_wait",
    "parse_retry_after",
]

T = TypeVar("T")
FEEDBACK_BATCH = 10_000  # the most reports the server takes in one request
_JSON_HEADERS = {"content-type": "application/json"}
_REJECTED = frozenset({400, 405, 408, 413, 415, 422})


# -- results ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """What the server's validation found in one field of one instance."""

    field: str
    check: str  # type | range | category | extra | entity
    msg: str

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> Finding:
        return cls(str(item.get("field", "")), str(item.get("check", "")), str(item["msg"]))


@dataclass(frozen=True, slots=True)
class Prediction:
    """One instance's slot in a predict response.

    A refused instance has ``errors`` (``refused`` is true) and no prediction; a flagged
    one was answered but carries ``findings``; ``fallback`` says which link of the
    fallback chain answered (None: the model itself).
    """

    prediction_id: str
    model_version: str | None
    prediction: Any
    label: Any = None
    probability: float | None = None
    confidence: float | None = None
    interval: tuple[float, float] | None = None
    explanation: tuple[Mapping[str, Any], ...] = ()
    action: str | None = None
    fallback: str | None = None
    reason: str | None = None
    cached: bool = False
    findings: tuple[Finding, ...] = ()
    features_missing: tuple[str, ...] = ()
    errors: tuple[Finding, ...] = ()

    @property
    def refused(self) -> bool:
        """The server's validation refused this instance: it has no prediction."""
        return bool(self.errors)

    @classmethod
    def from_json(cls, slot: Mapping[str, Any]) -> Prediction:
        interval = slot.get("interval")
        return cls(
            prediction_id=slot["prediction_id"],
            model_version=slot.get("model_version"),
            prediction=slot.get("prediction"),
            label=slot.get("label"),
            probability=slot.get("probability"),
            confidence=slot.get("confidence"),
            interval=(interval[0], interval[1]) if interval else None,
            explanation=tuple(slot.get("explanation") or ()),
            action=slot.get("action"),
            fallback=slot.get("fallback"),
            reason=slot.get("reason"),
            cached=bool(slot.get("cached", False)),
            findings=_findings(slot.get("findings")),
            features_missing=tuple(slot.get("features_missing") or ()),
            errors=_findings(slot.get("errors")),
        )


@dataclass(frozen=True, slots=True)
class FeedbackReceipt:
    """How many reports the server stored (0 when it runs without a metadata store)."""

    stored: int


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """The model the server answers with."""

    version: str | None
    task: str | None
    loaded_at: float | None


@dataclass(frozen=True, slots=True)
class LoadFailure:
    """The last production version that failed to load: its reference, why, and when."""

    ref: str
    error: str
    at: float


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """``GET /v1/status``: what is served, since when, and how the server is set up."""

    ready: bool
    model: ModelInfo
    last_load_error: LoadFailure | None
    metadata_store: str  # reachable | unreachable | unknown
    keys: int
    uptime_s: float
    pid: int
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def max_instances(self) -> int | None:
        """The most instances the server takes in one predict request."""
        value = self.settings.get("max_instances")
        return int(value) if value is not None else None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ServerStatus:
        model = body.get("model") or {}
        failed = body.get("last_load_error")
        return cls(
            ready=bool(body["ready"]),
            model=ModelInfo(model.get("version"), model.get("task"), model.get("loaded_at")),
            last_load_error=(
                LoadFailure(str(failed["ref"]), str(failed["error"]), float(failed["at"]))
                if failed
                else None
            ),
            metadata_store=str(body.get("metadata_store")),
            keys=int(body.get("keys", 0)),
            uptime_s=float(body.get("uptime_s", 0.0)),
            pid=int(body.get("pid", 0)),
            settings=dict(body.get("settings") or {}),
        )


def _findings(items: Any) -> tuple[Finding, ...]:
    return tuple(Finding.from_json(item) for item in items) if items else ()


# -- the pure core: batches and answers (the retry decisions are keel.retrying's) ----


def batched(rows: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``rows`` in consecutive slices of at most ``size`` (the server's max_instances)."""
    if size < 1:
        raise ValueError("a batch holds at least one row")
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _decode(response: httpx.Response) -> Any:
    """The JSON body, or UnexpectedResponse when the answer is not the server's JSON."""
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json":
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            pass
    shown = media or "no content type"
    raise UnexpectedResponse(
        f"{response.request.url} answered {response.status_code} with {shown}, not the JSON a "
        "keel server sends; check that the URL points at keel serve and not at a proxy's page"
    )


def _api_error(response: httpx.Response, retry_after: float | None = None) -> ApiError:
    """The error for an error status, carrying the server's message and detail."""
    status = response.status_code
    body = _decode(response)
    message, detail = _said(body)
    where = f"{response.request.method} {response.request.url.path}"
    text = f"{where} got {status}: {message}"
    if status in (401, 403):
        return AuthError(text, status, message, detail)
    if status == 429:
        return RateLimited(_waited(text, retry_after), status, message, detail, retry_after)
    if status == 503:
        return ServiceUnavailable(_waited(text, retry_after), status, message, detail, retry_after)
    if status == 422 and isinstance(body, dict) and body.get("predictions"):
        slots = [Prediction.from_json(slot) for slot in body["predictions"]]
        return InstanceRefused(text, status, message, detail, slots=slots)
    if status in _REJECTED:
        return RequestRejected(text, status, message, detail)
    return ApiError(text, status, message, detail)


def _said(body: Any) -> tuple[str, Any]:
    """The server's message and detail: Keel's ``{"error", "detail"}`` or a bare detail."""
    if not isinstance(body, dict):
        return str(body)[:200], None
    message = body.get("error")
    detail = body.get("detail")
    if message is None:
        message = detail if isinstance(detail, str) else "the server gave no reason"
    return str(message), detail


def _waited(text: str, retry_after: float | None) -> str:
    if retry_after is None:
        return f"{text} (the retries are spent; try again later)"
    return f"{text} (the server asks to retry after {retry_after:g} s; the retries are spent)"


def _headers(body: bytes | None) -> dict[str, str] | None:
    return _JSON_HEADERS if body is not None else None


def _predict_body(rows: Sequence[Mapping[str, Any]], explain: bool | None) -> bytes:
    envelope: dict[str, Any] = {"instances": rows}
    if explain is not None:
        envelope["explain"] = explain
    return orjson.dumps(envelope)


def _single_body(row: Mapping[str, Any], explain: bool | None) -> bytes:
    envelope: dict[str, Any] = {"instance": row}
    if explain is not None:
        envelope["explain"] = explain
    return orjson.dumps(envelope)


def _feedback_body(reports: Sequence[tuple[str, Any, float | None]]) -> bytes:
    items = [
        {"prediction_id": pid, "label": label, **({"value": value} if value is not None else {})}
        for pid, label, value in reports
    ]
    return orjson.dumps({"feedback": items})


Report = tuple[str, Any] | tuple[str, Any, float | None]


def _reports(items: Sequence[Report]) -> list[tuple[str, Any, float | None]]:
    return [(item[0], item[1], item[2] if len(item) > 2 else None) for item in items]


# -- the clients -----------------------------------------------------------------------


class _Base:
    """What both clients share: settings, headers, the answer to each call."""

    def __init__(
        self,
        url: str,
        key: str | None,
        timeout: float,
        retry: RetryPolicy | None,
        batch_size: int | None,
    ) -> None:
        self.url = url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.batch_size = batch_size
        self._timeout = httpx.Timeout(timeout)
        self._headers = {"authorization": f"Bearer {key}"} if key else {}

    def _error(self, response: httpx.Response) -> ApiError:
        return _api_error(response, parse_retry_after(response.headers.get("retry-after")))

    def _one(self, response: httpx.Response) -> Prediction:
        if response.status_code != 200:
            raise self._error(response)
        return Prediction.from_json(_decode(response)["predictions"][0])

    def _many(self, response: httpx.Response) -> list[Prediction]:
        """Each slot; a 422 that refused every instance still returns their slots."""
        if response.status_code != 200:
            error = self._error(response)
            if isinstance(error, InstanceRefused):
                return list(error.slots)
            raise error
        return [Prediction.from_json(slot) for slot in _decode(response)["predictions"]]

    def _ok(self, response: httpx.Response) -> Any:
        if response.status_code != 200:
            raise self._error(response)
        return _decode(response)


class Client(_Base):
    """A blocking client for ``keel serve``; one connection pool, closed by ``close()`` or
    by leaving its ``with`` block.

    ``key`` is an API key (``keel keys create``); ``timeout`` bounds each attempt in
    seconds (connect, send, wait for the answer); ``retry`` sets the retries (see the
    module's docstring for which calls are retried when); ``batch_size`` caps the rows per
    predict request in ``predict_many`` (by default the server's ``max_instances``).
    """

    def __init__(
        self,
        url: str,
        key: str | None = None,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        batch_size: int | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(url, key, timeout, retry, batch_size)
        self._http = httpx.Client(
            base_url=self.url, headers=self._headers, timeout=self._timeout, transport=transport
        )

    def predict(self, row: Mapping[str, Any], *, explain: bool | None = None) -> Prediction:
        """The prediction for one instance; InstanceRefused if validation refused it."""
        return self._one(self._send("POST", "/v1/predict", _single_body(row, explain)))

    def predict_many(
        self, rows: Sequence[Mapping[str, Any]], *, explain: bool | None = None
    ) -> list[Prediction]:
        """One slot per row, in order, sent in batches of at most the server's limit; a
        refused row's slot has ``errors`` (``refused`` is true)."""
        out: list[Prediction] = []
        for batch in batched(rows, self._batch_size(len(rows))):
            out.extend(self._many(self._send("POST", "/v1/predict", _predict_body(batch, explain))))
        return out

    def feedback(self, prediction_id: str, label: Any, value: float | None = None) -> int:
        """Report the ground truth of one prediction; returns how many reports were stored."""
        return self.feedback_many([(prediction_id, label, value)]).stored

    def feedback_many(self, reports: Sequence[Report]) -> FeedbackReceipt:
        """Report many ``(prediction_id, label[, value])`` at once (a repeat replaces)."""
        stored = 0
        for batch in batched(_reports(reports), FEEDBACK_BATCH):
            response = self._send("POST", "/v1/feedback", _feedback_body(batch), idempotent=True)
            stored += int(self._ok(response)["stored"])
        return FeedbackReceipt(stored)

    def status(self) -> ServerStatus:
        """What the server serves and how it is set up."""
        return ServerStatus.from_json(self._ok(self._send("GET", "/v1/status", idempotent=True)))

    def _batch_size(self, rows: int) -> int:
        if self.batch_size is None:
            self.batch_size = self.status().max_instances or max(rows, 1)
        return self.batch_size

    def _send(
        self, method: str, path: str, body: bytes | None = None, *, idempotent: bool = False
    ) -> httpx.Response:
        attempts = Attempts(self.retry, self.url + path, idempotent=idempotent)
        while True:
            step = attempts.after(self._try(method, path, body))
            if isinstance(step, httpx.Response):
                return step
            time.sleep(step)

    def _try(self, method: str, path: str, body: bytes | None) -> Outcome:
        try:
            return self._http.request(method, path, content=body, headers=_headers(body))
        except httpx.TransportError as error:
            return error

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(_Base):
    """``Client`` for asyncio: the same calls, awaited; close with ``aclose()`` or
    ``async with``."""

    def __init__(
        self,
        url: str,
        key: str | None = None,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        batch_size: int | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(url, key, timeout, retry, batch_size)
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=self._headers, timeout=self._timeout, transport=transport
        )

    async def predict(self, row: Mapping[str, Any], *, explain: bool | None = None) -> Prediction:
        """The prediction for one instance; InstanceRefused if validation refused it."""
        return self._one(await self._send("POST", "/v1/predict", _single_body(row, explain)))

    async def predict_many(
        self, rows: Sequence[Mapping[str, Any]], *, explain: bool | None = None
    ) -> list[Prediction]:
        """One slot per row, in order, sent in batches of at most the server's limit."""
        out: list[Prediction] = []
        for batch in batched(rows, await self._batch_size(len(rows))):
            response = await self._send("POST", "/v1/predict", _predict_body(batch, explain))
            out.extend(self._many(response))
        return out

    async def feedback(self, prediction_id: str, label: Any, value: float | None = None) -> int:
        """Report the ground truth of one prediction; returns how many reports were stored."""
        return (await self.feedback_many([(prediction_id, label, value)])).stored

    async def feedback_many(self, reports: Sequence[Report]) -> FeedbackReceipt:
        """Report many ``(prediction_id, label[, value])`` at once (a repeat replaces)."""
        stored = 0
        for batch in batched(_reports(reports), FEEDBACK_BATCH):
            body = _feedback_body(batch)
            response = await self._send("POST", "/v1/feedback", body, idempotent=True)
            stored += int(self._ok(response)["stored"])
        return FeedbackReceipt(stored)

    async def status(self) -> ServerStatus:
        """What the server serves and how it is set up."""
        response = await self._send("GET", "/v1/status", idempotent=True)
        return ServerStatus.from_json(self._ok(response))

    async def _batch_size(self, rows: int) -> int:
        if self.batch_size is None:
            self.batch_size = (await self.status()).max_instances or max(rows, 1)
        return self.batch_size

    async def _send(
        self, method: str, path: str, body: bytes | None = None, *, idempotent: bool = False
    ) -> httpx.Response:
        attempts = Attempts(self.retry, self.url + path, idempotent=idempotent)
        while True:
            step = attempts.after(await self._try(method, path, body))
            if isinstance(step, httpx.Response):
                return step
            await asyncio.sleep(step)

    async def _try(self, method: str, path: str, body: bytes | None) -> Outcome:
        try:
            return await self._http.request(method, path, content=body, headers=_headers(body))
        except httpx.TransportError as error:
            return error

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()
