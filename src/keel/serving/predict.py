"""``POST /v1/predict``: the hot path, as a raw ASGI handler.

Body (size-capped, deadline-bounded) → orjson → envelope → validation compiled from the
model's schema → response cache → micro-batched model behind the fallback chain →
confidence, explanation, action → prediction log (group commit) → response. Returns the
status and the fallback marker so the gateway can count them.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import orjson

from keel.serving.backend import Prediction
from keel.serving.cache import ResponseCache, canonical
from keel.serving.http import (
    BodyTooLarge,
    BodyTooSlow,
    ClientGone,
    Headers,
    Receive,
    Send,
    error_body,
    read_body,
    send_json,
)
from keel.serving.state import ServedModel, ServerState, action_for

__all__ = ["handle_predict"]

logger = logging.getLogger("keel.serving")

Outcome = tuple[int, str | None, str]


@dataclass(frozen=True)
class Refusal:
    """Why a request gets no prediction: status, message, per-field detail."""

    status: int
    message: str
    detail: Any = None


async def handle_predict(
    state: ServerState, headers: Headers, receive: Receive, send: Send
) -> Outcome:
    """Answer one predict request; return (status, fallback marker, model version)."""
    served = state.served
    read = await _read(state, served, headers, receive)
    if isinstance(read, Refusal):
        await send_json(send, read.status, error_body(read.message, read.detail))
        return read.status, None, served.version
    started = time.perf_counter()
    rows, explain, raw = read
    arm = "production"
    delivery = state.delivery
    if delivery is not None:
        served, arm, key = delivery.pick(served, rows)
    answers, cached = await _answer(state, served, rows, explain)
    outputs = [
        _shape(state, served, row, a, c) for row, a, c in zip(rows, answers, cached, strict=True)
    ]
    if delivery is not None and key is not None:
        outputs[0]["prediction_id"] = key  # the request was routed by its prediction id
    if explain:
        await _explain(state, served, rows, answers, outputs)
    latency = (time.perf_counter() - started) * 1000
    if state.log is not None:
        entries = _log_entries(rows, answers, cached, outputs, latency, arm, raw)
        if not await state.log.write(entries):
            state.metrics.log_errors.inc()
    body = {
        "predictions": outputs,
        "model_version": served.version,
        "latency_ms": round(latency, 3),
    }
    await send_json(send, 200, orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY))
    if delivery is not None and delivery.shadow is not None:
        delivery.shadow.offer(rows, [out["prediction_id"] for out in outputs])
    marker = answers[0].fallback if answers else None
    return 200, marker, served.version


async def _read(
    state: ServerState, served: ServedModel, headers: Headers, receive: Receive
) -> tuple[list[dict[str, Any]], bool, bytes | None] | Refusal:
    """The validated rows, whether to explain, and the body when the log may keep it."""
    settings = state.settings
    if headers.content_type is None or not headers.content_type.startswith(b"application/json"):
        return Refusal(415, "send the instances as JSON with Content-Type: application/json")
    limit = settings.max_body_kb * 1024
    try:
        raw = await read_body(receive, limit, settings.body_timeout.total_seconds())
    except BodyTooLarge:
        return Refusal(413, f"the body is larger than {settings.max_body_kb} KB")
    except BodyTooSlow:
        return Refusal(408, "the body did not arrive in time")
    except ClientGone:
        return Refusal(400, "the client disconnected")
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return Refusal(400, f"the body is not valid JSON ({error})")
    read = _envelope(state, served, payload)
    if isinstance(read, Refusal):
        return read
    rows, explain = read
    return rows, explain, raw if _as_sent(payload, rows) else None


def _as_sent(payload: dict[str, Any], rows: list[dict[str, Any]]) -> bool:
    """Whether the body's one instance is exactly the validated row (no field dropped or
    filled in): then the log keeps the body's bytes rather than encoding the row again."""
    instance = payload.get("instance")
    if len(rows) != 1 or not isinstance(instance, dict):
        return False
    return rows[0] is instance or rows[0].keys() == instance.keys()


def _envelope(
    state: ServerState, served: ServedModel, payload: Any
) -> tuple[list[dict[str, Any]], bool] | Refusal:
    if not isinstance(payload, dict) or ("instances" in payload) == ("instance" in payload):
        return Refusal(422, 'send {"instances": [{...}, ...]} or {"instance": {...}}')
    instances = payload["instances"] if "instances" in payload else [payload["instance"]]
    explain = payload.get("explain", state.settings.explain)
    if not isinstance(instances, list) or not instances or not isinstance(explain, bool):
        return Refusal(422, '"instances" must be a non-empty list and "explain" true or false')
    if len(instances) > state.settings.max_instances:
        return Refusal(413, f"at most {state.settings.max_instances} instances per request")
    if served.validator is None:
        if not all(isinstance(instance, dict) for instance in instances):
            return Refusal(422, "every instance must be a JSON object")
        return instances, False
    rows, errors = served.validator.validate(instances)
    if errors:
        return Refusal(
            422, "the instances do not match the model's input", [e.to_dict() for e in errors]
        )
    return rows, explain


async def _answer(
    state: ServerState, served: ServedModel, rows: list[dict[str, Any]], explain: bool
) -> tuple[list[Prediction], list[bool]]:
    cache = state.cache
    if cache is None:
        return await served.backend.predict(rows), [False] * len(rows)
    prefix = f"{served.version}|{int(explain)}|".encode()
    keys = [prefix + canonical(row) for row in rows]
    found = [await _cache_get(cache, key) for key in keys]
    for hit in found:
        state.metrics.cache_lookup(hit is not None)
    missing = [i for i, hit in enumerate(found) if hit is None]
    fresh = await served.backend.predict([rows[i] for i in missing]) if missing else []
    answers: list[Prediction | None] = [None if hit is None else Prediction(**hit) for hit in found]
    for i, answer in zip(missing, fresh, strict=True):
        answers[i] = answer
        if answer.fallback is None:
            await _cache_set(cache, keys[i], _cacheable(answer))
    return [a for a in answers if a is not None], [hit is not None for hit in found]


async def _cache_get(cache: ResponseCache, key: bytes) -> dict[str, Any] | None:
    try:
        return await cache.get(key)
    except Exception as error:  # a cache that is down is a miss, never a failed request
        logger.warning("response cache unavailable: %r", error)
        return None


async def _cache_set(cache: ResponseCache, key: bytes, value: dict[str, Any]) -> None:
    try:
        await cache.set(key, value)
    except Exception as error:
        logger.warning("response cache unavailable: %r", error)


def _cacheable(answer: Prediction) -> dict[str, Any]:
    return {
        "prediction": answer.prediction,
        "probability": answer.probability,
        "confidence": answer.confidence,
        "interval": answer.interval,
        "model_version": answer.model_version,
    }


def _shape(
    state: ServerState, served: ServedModel, row: dict[str, Any], answer: Prediction, cached: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prediction_id": os.urandom(16).hex(),
        "model_version": answer.model_version or served.version,
        "prediction": answer.prediction,
    }
    if served.task == "classification":
        out["label"] = answer.prediction
        out["probability"] = answer.probability
        out["confidence"] = answer.confidence
    elif answer.interval is not None:
        out["interval"] = list(answer.interval)
    if state.actions:
        out["action"] = action_for(state.actions, answer, row)
    out["fallback"] = answer.fallback
    if answer.reason is not None:
        out["reason"] = answer.reason
    if cached:
        out["cached"] = True
    return out


async def _explain(
    state: ServerState,
    served: ServedModel,
    rows: list[dict[str, Any]],
    answers: list[Prediction],
    outputs: list[dict[str, Any]],
) -> None:
    explain = getattr(served.explainer, "explain", None)
    if explain is None:
        return
    for row, answer, out in zip(rows, answers, outputs, strict=True):
        if answer.fallback is None:
            out["explanation"] = await explain(row, state.settings.explain_top)


def _log_entries(
    rows: list[dict[str, Any]],
    answers: list[Prediction],
    cached: list[bool],
    outputs: list[dict[str, Any]],
    latency: float,
    arm: str,
    raw: bytes | None,
) -> list[dict[str, Any]]:
    """The prediction log's records, complete (id and time) so the log need not copy them.

    With ``raw`` (one instance, as sent) the record carries the request body in place of
    ``inputs``: copying its bytes costs far less than encoding every value again, and the
    log reads the instance back out of it (``keel.monitoring.log``).
    """
    now = time.time()
    entries = [
        {
            "prediction_id": out["prediction_id"],
            "inputs": row,
            "features": answer.features,
            "output": answer.prediction,
            "model_version": out["model_version"],
            "route": "cache" if hit else arm,
            "confidence": answer.confidence,
            "score": answer.score,
            "probabilities": answer.probabilities,
            "latency_ms": latency,
            "fallback": answer.fallback,
            "failure": answer.failure,
            "time": now,
        }
        for row, answer, hit, out in zip(rows, answers, cached, outputs, strict=True)
    ]
    if raw is not None:
        del entries[0]["inputs"]
        entries[0]["request"] = orjson.Fragment(raw)
    return entries
