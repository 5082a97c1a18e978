"""``POST /v1/predict``: the hot path, as a raw ASGI handler.

Body (size-capped, deadline-bounded) → orjson → envelope → validation compiled from the
model's schema, and its policy per row → response cache → micro-batched model behind the
fallback chain → confidence, explanation, action → prediction log (group commit) →
response. Returns the status and the fallback marker so the gateway can count them.

A batch is answered row by row: rows the policy answers are scored (flagged rows carry
their ``findings``), rows it sends to the fallback chain are answered by the chain, and
refused rows carry their ``errors`` in their own slot. The status is 200 when at least one
row has an answer; 422 when every row was refused (the body then also has ``detail``,
one entry per bad field, and the refused slots under ``predictions``).
"""

from __future__ import annotations

import logging
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
    is_json,
    read_body,
    send_json,
)
from keel.serving.respond import Answered, log_entries, row_outcomes, row_slot
from keel.serving.state import ServedModel, ServerState
from keel.serving.validation import Screening

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
    rows, explain, raw, screening = read
    answerable = list(range(len(rows))) if screening is None else screening.indexes("answer")
    picked = [rows[i] for i in answerable]
    delivery = state.delivery
    arms = {"production": served}
    routes: list[tuple[str, str | None]] = [("production", None)] * len(picked)
    if delivery is not None and delivery.canary is not None and picked:
        arms["canary"] = delivery.canary
        routes = delivery.routes(picked)
        if len({arm for arm, _ in routes}) == 1:
            served = arms[routes[0][0]]  # the whole request went one way: its version
    answers, cached = await _answer_routed(state, arms, picked, routes, explain)
    named = [arm for arm, _ in routes]
    outcomes = row_outcomes(served, rows, screening, named, answerable, answers, cached)
    outputs = [
        row_slot(served, state.actions, row, out) for row, out in zip(rows, outcomes, strict=True)
    ]
    for index, (_, key) in zip(answerable, routes, strict=True):
        if key is not None:
            outputs[index]["prediction_id"] = key  # the row was routed by this id
    if explain:
        models = [arms[outcome.route] for outcome in outcomes]
        await _explain(state, models, rows, outcomes, outputs)
    latency = (time.perf_counter() - started) * 1000
    if state.log is not None:
        entries = log_entries(rows, outcomes, outputs, latency, raw)
        if not await state.log.write(entries):
            state.metrics.log_errors.inc()
    status = 200 if any(outcome.answer is not None for outcome in outcomes) else 422
    await send_json(send, status, _body(served, outputs, outcomes, latency, status))
    if delivery is not None and delivery.shadow is not None and picked:
        delivery.shadow.offer(picked, [outputs[i]["prediction_id"] for i in answerable])
    marker = next((o.answer.fallback for o in outcomes if o.answer is not None), None)
    return status, marker, served.version


def _body(
    served: ServedModel,
    outputs: list[dict[str, Any]],
    outcomes: list[Answered],
    latency: float,
    status: int,
) -> bytes:
    body: dict[str, Any] = {
        "predictions": outputs,
        "model_version": served.version,
        "latency_ms": round(latency, 3),
    }
    if status == 422:
        found = [finding for outcome in outcomes for finding in outcome.findings]
        body = {
            "error": "no instance could be scored: see each one's errors",
            "detail": [finding.to_detail() for finding in found],
            **body,
        }
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


Read = tuple[list[dict[str, Any]], bool, bytes | None, Screening | None]


async def _read(
    state: ServerState, served: ServedModel, headers: Headers, receive: Receive
) -> Read | Refusal:
    """The validated rows, whether to explain, the body when the log may keep it, and the
    validation's findings (None when there are none)."""
    settings = state.settings
    if not is_json(headers.content_type):
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
    rows, explain, screening = read
    return rows, explain, raw if screening is None and _as_sent(payload, rows) else None, screening


def _as_sent(payload: dict[str, Any], rows: list[dict[str, Any]]) -> bool:
    """Whether the body's one instance is exactly the validated row (no field dropped or
    filled in): then the log keeps the body's bytes rather than encoding the row again."""
    instance = payload.get("instance")
    if len(rows) != 1 or not isinstance(instance, dict):
        return False
    return rows[0] is instance or rows[0].keys() == instance.keys()


def _envelope(
    state: ServerState, served: ServedModel, payload: Any
) -> tuple[list[dict[str, Any]], bool, Screening | None] | Refusal:
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
        return instances, False, None
    screening = served.validator.screen(instances)
    return screening.rows, explain, screening if screening.findings else None


async def _answer_routed(
    state: ServerState,
    arms: dict[str, ServedModel],
    rows: list[dict[str, Any]],
    routes: list[tuple[str, str | None]],
    explain: bool,
) -> tuple[list[Prediction], list[bool]]:
    """Each arm answers its own rows in one call; the answers come back in row order."""
    if len(arms) == 1 or len({arm for arm, _ in routes}) <= 1:
        arm = routes[0][0] if routes else "production"
        return await _answer(state, arms[arm], rows, explain) if rows else ([], [])
    answers: list[Prediction | None] = [None] * len(rows)
    cached = [False] * len(rows)
    for arm, served in arms.items():
        indexes = [i for i, (routed, _) in enumerate(routes) if routed == arm]
        if indexes:
            found, hits = await _answer(state, served, [rows[i] for i in indexes], explain)
            for i, answer, hit in zip(indexes, found, hits, strict=True):
                answers[i], cached[i] = answer, hit
    return [a for a in answers if a is not None], cached


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
        if answer.fallback is None and answer.failure is None and not answer.features_missing:
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


async def _explain(
    state: ServerState,
    models: list[ServedModel],
    rows: list[dict[str, Any]],
    outcomes: list[Answered],
    outputs: list[dict[str, Any]],
) -> None:
    """Each answered row explained by the model that answered it."""
    for served, row, outcome, out in zip(models, rows, outcomes, outputs, strict=True):
        explain = getattr(served.explainer, "explain", None)
        if explain is not None and outcome.answer is not None and outcome.answer.fallback is None:
            out["explanation"] = await explain(row, state.settings.explain_top)
