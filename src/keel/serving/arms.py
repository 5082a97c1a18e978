"""Canary and shadow beside the production model.

When the registry has a canary, the server loads it next to production and routes each
row by ``keel.delivery.route``: the key is the row's entity value (``serving.entity`` or
the feature views' entity) or else its prediction id, salted with the canary's version, so
a customer keeps its arm while the share grows, alone or inside a batch. When it has a shadow, every
answered request is also offered to the shadow through a bounded queue and answered off
the response path, the requests that queued meanwhile in one call (as live requests are
micro-batched); its outputs are logged with route ``shadow`` and the same prediction
ids. A full queue drops the request (counted); a shadow that raises or hangs only ever
delays its own queue. With neither, ``ServerState.delivery`` is None and the hot path is
unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.delivery.routing import route
from keel.serving.backend import Prediction
from keel.serving.fallback import Rule
from keel.serving.features import FeatureClient
from keel.serving.respond import add_probabilities
from keel.serving.source import Staging
from keel.serving.state import ServedModel, ServerState, serve_model

if TYPE_CHECKING:
    from keel.serving.source import RegistrySource

__all__ = ["Arms", "Delivery", "ShadowRunner", "Staging"]

logger = logging.getLogger("keel.serving")
_QUEUE = 256  # shadow requests waiting; more are dropped
_SHADOW_BATCH = 64  # rows of waiting requests answered in one shadow call
_SHADOW_WAIT_S = 5.0  # a shadow call that takes longer is abandoned
_RETRY_S = 60.0
_RETIRE_AFTER_S = 30.0


class ShadowRunner:
    """Answers offered requests with the shadow model on a task of its own."""

    def __init__(self, served: ServedModel, state: ServerState) -> None:
        self.served = served
        self._state = state
        self._queue: asyncio.Queue[tuple[list[dict[str, Any]], list[str]]] = asyncio.Queue(_QUEUE)
        self._task = asyncio.get_running_loop().create_task(self._work())

    def offer(self, rows: list[dict[str, Any]], ids: list[str]) -> None:
        """Queue a request for the shadow without waiting; count it when the queue is full."""
        try:
            self._queue.put_nowait((rows, ids))
        except asyncio.QueueFull:
            self._state.metrics.shadow_dropped.inc()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _work(self) -> None:
        while True:
            rows, ids = await self._queue.get()
            while len(rows) < _SHADOW_BATCH and not self._queue.empty():
                more_rows, more_ids = self._queue.get_nowait()  # what queued meanwhile
                rows, ids = rows + more_rows, ids + more_ids
            try:
                await asyncio.wait_for(self._answer(rows, ids), _SHADOW_WAIT_S)
            except Exception as error:  # the shadow's failure is its own, never the live path's
                self._state.metrics.shadow_errors.inc()
                logger.warning("shadow %s failed: %r", self.served.version, error)

    async def _answer(self, rows: list[dict[str, Any]], ids: list[str]) -> None:
        started = time.perf_counter()
        answers = await self.served.backend.predict(rows)
        latency = (time.perf_counter() - started) * 1000
        log = self._state.log
        if log is None:
            return
        entries = [
            _shadow_entry(pid, row, answer, self.served.version, latency)
            for pid, row, answer in zip(ids, rows, answers, strict=True)
        ]
        if not await log.write(entries):
            self._state.metrics.log_errors.inc()


def _shadow_entry(
    prediction_id: str, row: dict[str, Any], answer: Prediction, version: str, latency: float
) -> dict[str, Any]:
    """The shadow's answer as a log record under the live answer's id (route ``shadow``)."""
    entry = {
        "prediction_id": prediction_id,
        "inputs": row,
        "features": answer.features,
        "output": answer.prediction,
        "model_version": answer.model_version or version,
        "route": "shadow",
        "confidence": answer.confidence,
        "score": answer.score,
        "latency_ms": latency,
        "fallback": answer.fallback,
        "failure": answer.failure,
    }
    if answer.proba is not None and answer.classes is not None:
        add_probabilities(entry, answer.proba, answer.classes)
    return entry


@dataclass(frozen=True)
class Delivery:
    """The canary and shadow a server holds; swapped in one assignment like ``served``."""

    staging: Staging
    canary: ServedModel | None
    shadow: ShadowRunner | None
    entity: str | None

    def routes(self, rows: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
        """Each row's arm, row by row, so a customer keeps its arm inside any batch; for a
        row without an entity value, also the random key (its prediction id) that routed it."""
        if self.canary is None:
            return [("production", None)] * len(rows)
        share, salt = self.staging.share, self.canary.ref or ""
        found: list[tuple[str, str | None]] = []
        for row in rows:
            value = row.get(self.entity) if self.entity else None
            key = os.urandom(16).hex() if value is None else str(value)
            found.append((route(key, share, salt=salt), key if value is None else None))
        return found


class Arms:
    """Keeps ``state.delivery`` in step with the registry's canary and shadow: the one
    writer of it, so it keeps the ``Delivery`` it last set (the state knows it only by
    the shape the hot path uses, ``keel.serving.state.Beside``)."""

    def __init__(
        self,
        state: ServerState,
        source: RegistrySource,
        *,
        rule: Rule | None,
        features: FeatureClient | None,
    ) -> None:
        self.state = state
        self.source = source
        self.rule = rule
        self.features = features
        self.entity = state.settings.entity or (features.entities[0] if features else None)
        self._failed: dict[str, float] = {}
        self._delivery: Delivery | None = None

    async def apply(self, staging: Staging) -> None:
        """Load, swap or drop the canary and shadow to match ``staging`` (the registry's,
        read by the caller, or a snapshot's)."""
        staging = self._without_failed(staging)
        old = self._delivery
        if staging == (old.staging if old is not None else Staging()):
            return
        canary = await self._arm(staging.canary, old.canary if old else None)
        shadow = await self._shadow(staging.shadow, old.shadow if old else None)
        self._delivery = None
        if canary is not None or shadow is not None:
            self._delivery = Delivery(staging, canary, shadow, self.entity)
        self.state.delivery = self._delivery
        if old is not None and old.canary is not None and old.canary is not canary:
            _retire(old.canary)

    async def close(self) -> None:
        delivery, self._delivery = self._delivery, None
        self.state.delivery = None
        if delivery is None:
            return
        if delivery.shadow is not None:
            await delivery.shadow.close()
            _close_now(delivery.shadow.served)
        if delivery.canary is not None:
            _close_now(delivery.canary)

    def _without_failed(self, staging: Staging) -> Staging:
        now = time.monotonic()
        canary = None if self._failed_recently(staging.canary, now) else staging.canary
        shadow = None if self._failed_recently(staging.shadow, now) else staging.shadow
        return Staging(canary, staging.share if canary else 0.0, shadow)

    def _failed_recently(self, ref: str | None, now: float) -> bool:
        return ref is not None and now - self._failed.get(ref, -_RETRY_S) < _RETRY_S

    async def _arm(
        self, ref: str | None, current: ServedModel | None, *, shadow: bool = False
    ) -> ServedModel | None:
        if ref is None:
            return None
        if current is not None and current.ref == ref:
            return current
        try:
            model = await asyncio.to_thread(self.source.load, ref)
            warm_up = getattr(model, "warm_up_rows", None)
            if warm_up is not None:
                async with asyncio.timeout(_SHADOW_WAIT_S):  # a hanging model is not loaded
                    await model.predict(warm_up())
        except Exception as error:
            self._failed[ref] = time.monotonic()
            self.state.metrics.load_failures.inc()
            logger.critical("model %s failed to load beside production (%s)", ref, error)
            return None
        settings = self.state.settings
        if shadow:  # off the response path: no live deadline, and a failure is the shadow's
            settings = settings.model_copy(
                update={"timeout_ms": _SHADOW_WAIT_S * 1000, "fallback": ["none"]}
            )
        return serve_model(
            model,
            settings,
            self.state.metrics,
            ref=ref,
            rule=self.rule,
            features=self.features,
        )

    async def _shadow(self, ref: str | None, current: ShadowRunner | None) -> ShadowRunner | None:
        if current is not None and current.served.ref == ref:
            return current
        if current is not None:
            await current.close()
            _retire(current.served)
        served = await self._arm(ref, None, shadow=True)
        return None if served is None else ShadowRunner(served, self.state)


def _close_now(served: ServedModel) -> None:
    close = getattr(served.model, "close", None)
    if close is not None:
        close()


def _retire(served: ServedModel) -> None:
    close = getattr(served.model, "close", None)
    if close is not None:
        asyncio.get_running_loop().call_later(_RETIRE_AFTER_S, close)
