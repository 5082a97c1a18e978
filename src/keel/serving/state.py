"""What a running server holds: the served model, keys, limits, cache, log and metrics.

``ServedModel`` is immutable and swapped in one assignment: a request takes the model
it starts with and finishes on it, so a hot switch never drops or mixes a request.

When the production version cannot be loaded at start, an earlier version that loads may
stand in for it (``stand_in_for``): every answer it gives is marked ``fallback:
"previous"`` with the reason, and the server is not ready. With no model at all, answers
come from the fallback chain; when that chain has no rule to answer with, there is nothing
honest to say and ``ServerState.unservable`` gives the 503's sentence instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from keel.schema import ServingConfig
from keel.serving.backend import ModelBackend, Prediction
from keel.serving.batching import MicroBatcher
from keel.serving.cache import LastGood, ResponseCache
from keel.serving.expressions import compile_expression
from keel.serving.fallback import FallbackBackend, Rule
from keel.serving.features import FeatureClient, FeatureLookup, request_schema
from keel.serving.gatekeeper import Gatekeeper
from keel.serving.logwriter import LogWriter
from keel.serving.metrics import Metrics
from keel.serving.validation import ValidationPolicy, Validator, compile_validator

__all__ = [
    "PREVIOUS",
    "Action",
    "Beside",
    "ServedModel",
    "ServerState",
    "StandIn",
    "compile_actions",
    "serve_model",
]

logger = logging.getLogger("keel.serving")

Action = tuple[Callable[[Mapping[str, Any]], Any], str]
PREVIOUS = "previous"  # the fallback marker of an earlier version standing in for production


class StandIn:
    """An earlier version answering because production cannot load: each answer says so."""

    def __init__(self, inner: ModelBackend, reason: str) -> None:
        self.inner = inner
        self.version = inner.version
        self.reason = reason

    async def predict(self, batch: list[dict[str, Any]]) -> list[Prediction]:
        answers = await self.inner.predict(batch)
        for answer in answers:
            if answer.fallback is None and not answer.declined and answer.errors is None:
                answer.fallback = PREVIOUS
                answer.reason = answer.reason or self.reason
        return answers


@dataclass(frozen=True)
class ServedModel:
    """One loaded model and the chain in front of it."""

    ref: str | None
    version: str
    model: ModelBackend | None
    backend: FallbackBackend
    validator: Validator | None
    explainer: Any = None  # has explain(row, top) when the model can explain itself
    loaded_at: float = field(default_factory=time.time)
    stand_in_for: str | None = None  # the production ref this earlier version answers for

    @property
    def task(self) -> str | None:
        """classification or regression, when the model says (SklearnBackend does)."""
        return getattr(self.model, "task", None)


def serve_model(
    model: ModelBackend | None,
    settings: ServingConfig,
    metrics: Metrics,
    *,
    ref: str | None = None,
    rule: Rule | None = None,
    last_good: LastGood | None = None,
    features: FeatureClient | None = None,
    stand_in_for: str | None = None,
) -> ServedModel:
    """Put ``model`` (any backend) behind micro-batching and the fallback chain.

    A backend that has a ``schema`` (the training layer's input schema) gets requests
    validated against it; one with ``explain(row, top)`` can explain its answers. With
    ``stand_in_for`` (a production ref that failed to load) its answers are marked.
    """
    inner: ModelBackend | None = None
    validator = None
    explainer: Any = model
    if model is not None:
        batching = settings.batching
        inner = MicroBatcher(model, batching.max_batch, batching.max_wait_ms, metrics.batch)
        schema = getattr(model, "schema", None)  # a backend without one is not validated
        passthrough: tuple[str, ...] = ()
        if features is not None:
            inner = explainer = FeatureLookup(inner, features, settings.unknown_entity)
            if schema is not None:
                schema = request_schema(schema, features.feature_names)
            passthrough = features.entities
        if schema is not None:
            passthrough = (*passthrough, *getattr(model, "left_out", ()))
            validator = compile_validator(schema, _policy(settings, passthrough))
        if stand_in_for is not None:
            why = f"version {stand_in_for} failed to load; an earlier version answers"
            inner = StandIn(inner, why)
    backend = FallbackBackend(
        inner,
        settings.fallback,
        deadline_ms=settings.timeout_ms,
        rule=rule,
        last_good=last_good,
        entity=settings.entity,
    )
    version = model.version if model is not None else "none"
    return ServedModel(
        ref=ref,
        version=version,
        model=model,
        backend=backend,
        validator=validator,
        explainer=explainer,
        stand_in_for=stand_in_for,
    )


def _policy(settings: ServingConfig, passthrough: tuple[str, ...] = ()) -> ValidationPolicy:
    spec = settings.validation
    if settings.entity:
        passthrough = (*passthrough, settings.entity)
    return ValidationPolicy(
        types=spec.types,
        ranges=spec.ranges,
        range_margin=spec.range_margin,
        unseen_categories=spec.unseen_categories,
        extra_fields=spec.extra_fields,
        passthrough=passthrough,
    )


def compile_actions(settings: ServingConfig) -> list[Action]:
    return [(compile_expression(rule.when), rule.say) for rule in settings.actions]


def action_for(actions: list[Action], answer: Prediction, row: Mapping[str, Any]) -> str | None:
    """The first action whose condition holds for this answer, in plain words."""
    if answer.prediction is None:
        return None
    values = {
        **row,
        "prediction": answer.prediction,
        "label": answer.prediction,
        "probability": answer.probability,
        "confidence": answer.confidence,
    }
    for condition, say in actions:
        try:
            if condition(values):
                return say
        except Exception as error:  # a condition that cannot apply to this answer does not fire
            _ACTION_ERRORS.report(say, error)
    return None


class _OnceEach:
    """Logs each distinct failure of an action's condition once per process (not once per
    request), and stops noting new ones after ``limit`` (errors that quote row values)."""

    def __init__(self, limit: int = 100) -> None:
        self.limit = limit
        self._seen: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def report(self, say: str, error: Exception) -> None:
        key = (say, type(error).__name__, str(error))
        with self._lock:
            if key in self._seen or len(self._seen) > self.limit:
                return
            self._seen.add(key)
            full = len(self._seen) > self.limit
        logger.warning(
            "action %r did not fire: its condition failed with %s: %s (logged once; the "
            "answer goes out without this action)",
            say, type(error).__name__, error,
        )  # fmt: skip
        if full:
            logger.warning("more distinct action condition failures are not logged")


_ACTION_ERRORS = _OnceEach()


class ShadowArm(Protocol):
    """The shadow a server holds (``keel.serving.arms.ShadowRunner``)."""

    @property
    def served(self) -> ServedModel: ...

    def offer(self, rows: list[dict[str, Any]], ids: list[str]) -> None: ...


class Beside(Protocol):
    """A canary and a shadow beside production (``keel.serving.arms.Delivery``), as the
    hot path uses them: defined here so the state does not import the arms that fill it."""

    @property
    def canary(self) -> ServedModel | None: ...

    @property
    def shadow(self) -> ShadowArm | None: ...

    def routes(self, rows: list[dict[str, Any]]) -> list[tuple[str, str | None]]: ...


@dataclass
class ServerState:
    """Everything the routes share; built by ``create_app``."""

    settings: ServingConfig
    metrics: Metrics
    gate: Gatekeeper
    served: ServedModel
    cache: ResponseCache | None = None
    log: LogWriter | None = None
    actions: list[Action] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    ready: bool = False
    draining: bool = False
    last_load_error: dict[str, Any] | None = None
    metadata_ok: bool | None = None
    degraded: str | None = None  # "store unreachable since <time>" while serving without it
    delivery: Beside | None = None  # a canary or shadow beside production, if any

    def unservable(self) -> str | None:
        """Why no prediction can be given at all (no model, no rule in the chain), or None."""
        served = self.served
        if served.model is not None:
            return None
        chain = served.backend
        if chain.rule is not None and "rule" in chain.steps:
            return None
        failed = self.last_load_error
        cause = f"version {failed['ref']} failed to load" if failed else "no model is loaded"
        return (
            f"{cause} and the fallback chain has no rule (serving.rule); deploy a version "
            "that loads with `keel deploy V`"
        )
