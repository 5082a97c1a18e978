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

from keel import __version__
from keel.errors import StoreUnavailable
from keel.serving.gatekeeper import OPEN_PATHS
from keel.serving.openapi import (
    Alive,
    Feedback,
    FeedbackBatch,
    FeedbackReceipt,
    PredictResponse,
    Readiness,
    RouteRefusal,
    StatusOut,
    StoreDown,
    gateway,
    install_document,
    predict_request,
    predict_responses,
)
from keel.serving.outages import OutageLog
from keel.serving.state import ServerState

if TYPE_CHECKING:
    from keel.store.metadata import MetadataStore

__all__ = ["DOCS_STATIC", "FEEDBACK_TIMEOUT_S", "build_api"]

FEEDBACK_TIMEOUT_S = 2.0  # each wait on the store while writing feedback
RETRY_AFTER_S = 10  # what a 503 for feedback asks the client to wait
DOCS_STATIC = "/docs/static"  # Swagger UI's script and style, from the fastapi-offline package

logger = logging.getLogger("keel.serving")


def build_api(state: ServerState, store: MetadataStore | None) -> FastAPI:
    """The FastAPI app behind the gateway, with its docs at /docs (assets served locally)."""
    from fastapi_offline import FastAPIOffline

    api = FastAPIOffline(
        title="Keel model server",
        version=__version__,
        description="Send `Authorization: Bearer <key>` on every route but /healthz and /readyz.",
        redoc_url=None,
        static_url=DOCS_STATIC,
    )
    api.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    install_document(api, OPEN_PATHS)
    _declare_hot_routes(api, state.settings.max_instances)
    _add_feedback(api, store)

    @api.get(
        "/v1/status", tags=["status"], response_model=StatusOut, responses=gateway(scoped=False)
    )
    def status() -> dict[str, Any]:
        """What is served, since when, and how the server is set up."""
        return _status(state)

    @api.get(
        "/metrics",
        tags=["status"],
        response_class=Response,
        responses=gateway({200: {"content": {"text/plain": {"schema": {"type": "string"}}}}}),
    )
    def metrics() -> Response:
        """Prometheus metrics (summed over workers); the key needs the admin scope."""
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return api


def _declare_hot_routes(api: FastAPI, max_instances: int) -> None:
    """Document the routes the gateway answers before FastAPI sees the request."""

    @api.post(
        "/v1/predict",
        response_model=PredictResponse,
        tags=["predict"],
        responses=predict_responses(),
        openapi_extra={"requestBody": predict_request(max_instances)},
    )
    def predict() -> PredictResponse:  # pragma: no cover - docs only
        """Predict for one instance or a batch (answered by the gateway's hot path).

        Each instance is answered on its own: 200 when at least one has an answer, with
        refused instances carrying ``errors`` in their slots (``serving.validation`` says
        which findings refuse, flag or fall back); 422 when every instance was refused.
        """
        raise RuntimeError("the gateway answers /v1/predict")

    @api.get("/healthz", tags=["health"], response_model=Alive)
    def healthz() -> Alive:  # pragma: no cover - docs only
        """The process is alive (no key needed)."""
        raise RuntimeError("the gateway answers /healthz")

    @api.get(
        "/readyz",
        tags=["health"],
        response_model=Readiness,
        responses={503: {"description": "not ready (same body)", "model": Readiness}},
    )
    def readyz() -> Readiness:  # pragma: no cover - docs only
        """The model is loaded and the server is not draining (no key needed)."""
        raise RuntimeError("the gateway answers /readyz")


def _add_feedback(api: FastAPI, store: MetadataStore | None) -> None:
    outage = OutageLog("feedback writes", logger)
    refusals = {
        422: {"description": "the body does not match this route", "model": RouteRefusal},
        503: {
            "description": "the store is unreachable",
            "model": StoreDown,
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        },
    }

    @api.post(
        "/v1/feedback",
        response_model=FeedbackReceipt,
        tags=["feedback"],
        responses=gateway(refusals, posted=True),
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
