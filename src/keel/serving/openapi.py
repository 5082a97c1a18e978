"""What ``/openapi.json`` says: every route, every status and body the server really sends.

The gateway answers some statuses before any route runs (401, 403, 413, 429 on every
route with a key; 415 on every POST), and ``POST /v1/predict``, ``/healthz`` and
``/readyz`` are answered outside FastAPI altogether, so their docs are declared here by
hand rather than inferred. ``tests/serving/test_openapi.py`` sends each documented case to
a real server and checks the status and the body against this document.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Alive",
    "ErrorBody",
    "Feedback",
    "FeedbackBatch",
    "FeedbackReceipt",
    "PredictRefusal",
    "PredictResponse",
    "Readiness",
    "RouteRefusal",
    "StatusOut",
    "StoreDown",
    "gateway",
    "install_document",
    "predict_request",
    "predict_responses",
]


class ErrorBody(BaseModel):
    """Every refusal's body: one sentence that says what to change."""

    error: str


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
    label: Any = Field(None, description="classification: the predicted class")
    probability: float | None = Field(
        None, description="classification: the positive class's probability (two classes)"
    )
    confidence: float | None = Field(
        None, description="classification: the predicted class's probability"
    )
    interval: list[float] | None = Field(None, description="regression: the interval")
    explanation: list[dict[str, Any]] | None = Field(
        None, description='with "explain": the features that moved the answer most'
    )
    action: str | None = Field(None, description="the first serving.actions rule that matched")
    fallback: str | None = Field(None, description="null, or cache | rule | none")
    reason: str | None = Field(None, description="why the fallback answered")
    cached: bool | None = Field(None, description="true when the response cache answered")
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
    model_version: str | None
    latency_ms: float


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str


class PredictRefusal(BaseModel):
    """422: no instance could be scored. ``detail`` names every bad field; ``predictions``
    has every instance's slot with its ``errors`` (each is in the prediction log too). A
    body that is not a valid envelope gets only ``error``."""

    error: str
    detail: list[FieldError] | None = None
    predictions: list[PredictionOut] | None = None
    model_version: str | None = None
    latency_ms: float | None = None


class RouteRefusal(BaseModel):
    """422: the body does not match the route; ``detail`` names each bad field."""

    error: str
    detail: list[FieldError]


class Feedback(BaseModel):
    """The ground truth for one earlier prediction."""

    # strict: a value is taken only in the type the document gives it ("1.5" is no number)
    model_config = ConfigDict(strict=True)

    prediction_id: str = Field(min_length=1, max_length=64)
    label: str | int | float | bool
    value: float | None = Field(None, allow_inf_nan=False)


class FeedbackBatch(BaseModel):
    """Many reports in one request."""

    model_config = ConfigDict(strict=True)

    feedback: list[Feedback] = Field(min_length=1, max_length=10_000)


class FeedbackReceipt(BaseModel):
    """How many reports were stored (0 when the server runs without a metadata store)."""

    stored: int


class StoreDown(BaseModel):
    """503: the metadata store could not be reached; nothing was stored, send it again."""

    error: str
    stored: int = 0
    retry_after: int


class ModelOut(BaseModel):
    version: str | None
    task: str | None
    loaded_at: float | None


class LoadFailure(BaseModel):
    """The last production version that failed to load, and why."""

    ref: str
    error: str
    at: float = Field(description="when, in seconds since the epoch")


class StatusOut(BaseModel):
    """What is served, since when, and how the server is set up."""

    ready: bool
    model: ModelOut
    last_load_error: LoadFailure | None
    metadata_store: str = Field(description="reachable | unreachable | unknown")
    keys: int
    uptime_s: float
    pid: int
    settings: dict[str, Any] = Field(
        description="rate_limit, timeout_ms, max_instances, max_body_kb, fallback, cache, "
        "batching, validation, unknown_entity, log_predictions"
    )


class Alive(BaseModel):
    status: str


class Readiness(BaseModel):
    """200 when ready to answer, 503 (same body) when not."""

    ready: bool
    model: str | None
    draining: bool
    prediction_log: bool
    metadata_store: bool | None
    stand_in_for: str | None = Field(description="the version an earlier one stands in for")


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
_GATEWAY: dict[int, dict[str, Any]] = {
    401: {
        "description": "no valid API key",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
    403: {"description": "the key lacks the route's scope"},
    413: {"description": "the body (Content-Length) is larger than serving.max_body_kb"},
    429: {"description": "the key's rate limit is reached", "headers": _RETRY_AFTER},
}
_POSTED: dict[int, dict[str, Any]] = {
    415: {"description": "the body is not sent as Content-Type: application/json"},
}
_PREDICT: dict[int, dict[str, Any]] = {
    400: {"description": "the body is not valid JSON, or the client went away"},
    408: {"description": "the body did not arrive within serving.body_timeout"},
    413: {
        "description": "the body is larger than serving.max_body_kb, or the batch than "
        "serving.max_instances"
    },
    422: {"description": "no instance could be scored", "model": PredictRefusal},
    503: {
        "description": "no model is loaded and no fallback can answer",
        "headers": _RETRY_AFTER,
        "model": ErrorBody,
    },
}


def gateway(
    *tables: dict[int, dict[str, Any]], posted: bool = False, scoped: bool = True
) -> dict[int | str, dict[str, Any]]:
    """The responses of a keyed route: the gateway's refusals (each an ErrorBody; 403 only
    where the route needs a scope), 415 for a POST, then the route's own (``tables``,
    later ones win)."""
    merged: dict[int | str, dict[str, Any]] = {}
    refusals = _GATEWAY if scoped else {k: v for k, v in _GATEWAY.items() if k != 403}
    for table in (refusals, _POSTED if posted else {}, *tables):
        for status, spec in table.items():
            merged[status] = {"model": ErrorBody, **spec}
    return merged


def predict_responses() -> dict[int | str, dict[str, Any]]:
    return gateway(_PREDICT, posted=True)


def predict_request(max_instances: int) -> dict[str, Any]:
    """The predict body as JSON Schema: ``instances`` (1 to max_instances objects) or
    ``instance``, never both; ``explain`` true or false."""
    instance = {"type": "object", "description": "the model's inputs by name"}
    schema = {
        "type": "object",
        "properties": {
            "instances": {
                "type": "array",
                "items": instance,
                "minItems": 1,
                "maxItems": max_instances,
            },
            "instance": instance,
            "explain": {"type": "boolean", "description": "default: serving.explain"},
        },
        "oneOf": [{"required": ["instances"]}, {"required": ["instance"]}],
    }
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def install_document(api: Any, open_paths: frozenset[str]) -> None:
    """Make ``api.openapi()`` declare the bearer key every route needs except
    ``open_paths`` (``/healthz``, ``/readyz``), which need none."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            document = get_openapi(
                title=api.title,
                version=api.version,
                description=api.description,
                routes=api.routes,
            )
            document.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
            document["security"] = [{"bearer": []}]
            for path in open_paths:
                for operation in document["paths"].get(path, {}).values():
                    operation["security"] = []
            api.openapi_schema = document
        return api.openapi_schema  # type: ignore[no-any-return]

    api.openapi = openapi
