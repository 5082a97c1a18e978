"""The slower routes, on FastAPI for their OpenAPI docs: feedback, status, metrics.

``POST /v1/predict`` is declared here for the docs only: the gateway answers it before
FastAPI sees the request (see ``keel.serving.predict``). Authentication, scopes and rate
limits were applied by the gateway for every route below.

Feedback is written within ``FEEDBACK_TIMEOUT_S``: when the metadata store cannot be
reached in that time the answer is a JSON 503 with ``Retry-After``, so a store outage
costs the client seconds, not a hung request, and predictions are not held up.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from keel import __version__
from keel.errors import StoreUnavailable
from keel.serving.outages import OutageLog
from keel.serving.state import ServerState

if TYPE_CHECKING:
    from keel.store.metadata import MetadataStore

__all__ = ["FEEDBACK_TIMEOUT_S", "build_api"]

FEEDBACK_TIMEOUT_S = 2.0  # each wait on the store while writing feedback
RETRY_AFTER_S = 10  # what a 503 for feedback asks the client to wait

logger = logging.getLogger("keel.serving")


class PredictRequest(BaseModel):
    """One instance (``instance``) or a batch (``instances``) of the model's inputs."""

    instances: list[dict[str, Any]] | None = Field(None, max_length=100_000)
    instance: dict[str, Any] | None = None
    explain: bool | None = None


class Finding(BaseModel):
    """What validation found in one field of one instance."""

    field: str
    check: str = Field(description="type | range | category | extra | entity")
    msg: str


class PredictionOut(BaseModel):
    """One instance's slot: its prediction, or (refused) ``errors`` and no prediction."""

    prediction_id: str
    model_version: str | None = Field(
        description="the model that answered, the rule (rule:...), or null when refused"
    )
    prediction: Any
    label: Any = None
    probability: float | None = None
    confidence: float | None = None
    interval: list[float] | None = None
    explanation: list[dict[str, Any]] | None = None
    action: str | None = None
    fallback: str | None = Field(None, description="null, or cache | rule | none")
    reason: str | None = None
    cached: bool | None = None
    findings: list[Finding] | None = Field(
        None, description="flagged: answered, but outside what the model was trained on"
    )
    features_missing: list[str] | None = Field(
        None, description="features the online store could not serve for this instance"
    )
    errors: list[Finding] | None = Field(
        None, description="refused by serving.validation: this instance has no prediction"
    )


class PredictResponse(BaseModel):
    """Every instance has its slot, in request order; a refused one carries ``errors``."""

    predictions: list[PredictionOut]
    model_version: str
    latency_ms: float


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str


class PredictRefusal(BaseModel):
    """422: no instance could be scored. ``detail`` names every bad field; ``predictions``
    has every instance's slot with its ``errors`` (each is in the prediction log too). A
    body that is not a valid envelope gets only ``error`` (and ``detail``)."""

    error: str
    detail: list[FieldError] | None = None
    predictions: list[PredictionOut] | None = None
    model_version: str | None = None
    latency_ms: float | None = None


class Feedback(BaseModel):
    """The ground truth for one earlier prediction."""

    prediction_id: str = Field(min_length=1, max_length=64)
    label: str | int | float | bool
    value: float | None = Field(None, allow_inf_nan=False)


class FeedbackBatch(BaseModel):
    feedback: list[Feedback] = Field(min_length=1, max_length=10_000)


class FeedbackReceipt(BaseModel):
    stored: int


class StoreDown(BaseModel):
    """503: the metadata store could not be reached; nothing was stored, send it again."""

    error: str
    stored: int = 0
    retry_after: int


_REFUSALS: dict[int | str, dict[str, Any]] = {
    code: {"description": text}
    for code, text in [
        (400, "the body is not valid JSON"),
        (401, "no valid API key"),
        (403, "the key lacks the route's scope"),
        (408, "the body arrived too slowly"),
        (413, "the body or the batch is too large"),
        (415, "the body is not application/json"),
        (429, "the key's rate limit is reached (see Retry-After)"),
    ]
}


def _declare_bearer(api: FastAPI) -> None:
    """Document the bearer key every route needs (the gateway enforces it)."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = get_openapi(
                title=api.title,
                version=api.version,
                description=api.description,
                routes=api.routes,
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
            schema["security"] = [{"bearer": []}]
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]


def build_api(state: ServerState, store: MetadataStore | None) -> FastAPI:
    """The FastAPI app behind the gateway."""
    api = FastAPI(
        title="Keel model server",
        version=__version__,
        description="Send `Authorization: Bearer <key>` on every route but /healthz and /readyz.",
        redoc_url=None,
    )
    api.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]

    _declare_bearer(api)
    outage = OutageLog("feedback writes", logger)

    refusals: dict[int | str, dict[str, Any]] = {
        **_REFUSALS,
        422: {"description": "no instance could be scored", "model": PredictRefusal},
    }

    @api.post("/v1/predict", response_model=PredictResponse, tags=["predict"], responses=refusals)
    def predict(request: PredictRequest) -> PredictResponse:  # pragma: no cover - docs only
        """Predict for one instance or a batch (answered by the gateway's hot path).

        Each instance is answered on its own: 200 when at least one has an answer, with
        refused instances carrying ``errors`` in their slots (``serving.validation`` says
        which findings refuse, flag or fall back); 422 when every instance was refused.
        """
        raise RuntimeError("the gateway answers /v1/predict")

    @api.post(
        "/v1/feedback",
        response_model=FeedbackReceipt,
        tags=["feedback"],
        responses={503: {"description": "the store is unreachable", "model": StoreDown}},
    )
    def feedback(body: Feedback | FeedbackBatch, request: Request) -> FeedbackReceipt | Response:
        """Store ground truth by prediction id (a repeat replaces the earlier report).

        503 with ``Retry-After`` when the metadata store cannot be reached within a few
        seconds: nothing was stored, send the same feedback again later.
        """
        items = body.feedback if isinstance(body, FeedbackBatch) else [body]
        if store is None:
            return FeedbackReceipt(stored=0)
        try:
            _store_feedback(store, items, getattr(request.state, "key_id", None))
        except StoreUnavailable as error:
            outage.failed(error)
            return _store_down()
        outage.succeeded()
        return FeedbackReceipt(stored=len(items))

    @api.get("/v1/status", tags=["status"])
    def status() -> dict[str, Any]:
        """What is served, since when, and how the server is set up."""
        return _status(state)

    @api.get("/metrics", tags=["status"], response_class=Response)
    def metrics() -> Response:
        """Prometheus metrics (summed over workers)."""
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return api


async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
    """422 with a message per field; the input is not echoed (it may not even be JSON-safe)."""
    detail = [
        {"loc": [str(part) for part in item["loc"]], "msg": str(item["msg"])}
        for item in error.errors()
    ]
    return JSONResponse({"error": "the body does not match this route", "detail": detail}, 422)


def _store_down() -> JSONResponse:
    """The 503 for feedback the store could not take (the cause, with the store's address,
    goes to the server's log, not to the client)."""
    body = StoreDown(
        error="the metadata store is unreachable; the feedback was not stored, send it again",
        retry_after=RETRY_AFTER_S,
    )
    return JSONResponse(body.model_dump(), 503, headers={"Retry-After": str(RETRY_AFTER_S)})


def _store_feedback(store: MetadataStore, items: list[Feedback], key_id: str | None) -> None:
    import sqlalchemy as sa

    from keel.serving.tables import feedback

    now = time.time()
    ids = [item.prediction_id for item in items]
    rows = {item.prediction_id: item for item in items}  # the last report per id wins
    with store.begin(timeout_s=FEEDBACK_TIMEOUT_S) as connection:
        connection.execute(sa.delete(feedback).where(feedback.c.prediction_id.in_(ids)))
        connection.execute(
            feedback.insert(),
            [
                {
                    "prediction_id": pid,
                    "label": str(item.label),
                    "value": item.value,
                    "received_at": now,
                    "key_id": key_id,
                }
                for pid, item in rows.items()
            ],
        )


def _status(state: ServerState) -> dict[str, Any]:
    served = state.served
    settings = state.settings
    return {
        "ready": state.ready,
        "model": {
            "version": served.version,
            "task": served.task,
            "loaded_at": served.loaded_at if served.model is not None else None,
        },
        "last_load_error": state.last_load_error,
        "metadata_store": {None: "unknown", True: "reachable", False: "unreachable"}[
            state.metadata_ok
        ],
        "keys": len(state.gate.keyring),
        "uptime_s": round(time.time() - state.started_at, 3),
        "pid": os.getpid(),
        "settings": {
            "rate_limit": settings.rate_limit,
            "timeout_ms": settings.timeout_ms,
            "max_instances": settings.max_instances,
            "max_body_kb": settings.max_body_kb,
            "fallback": list(settings.fallback),
            "cache": settings.cache is not None,
            "batching": settings.batching.model_dump(),
            "validation": settings.validation.model_dump(),
            "unknown_entity": settings.unknown_entity,
            "log_predictions": state.log is not None,
        },
    }
