"""Start, hot-switch and stop: the server's background work.

At start the keys are read from the store and the production model is loaded and warmed
(readiness stays false until it is). While running, two loops poll the store: one
refreshes the key ring (revocations take effect within ``keys_refresh``), one watches the
registry and switches to a new production version without a restart. A version that
fails to load (its digest does not verify, it does not unpickle, its warm-up prediction
fails) leaves the previous one serving, is logged at CRITICAL and recorded as a critical
alert in the monitoring layer's alert book, and is tried again a minute later. The alert
stays open until the production version loads. A server that has nothing loaded when
production fails (at start) serves the newest earlier production version that loads, its
answers marked ``fallback: "previous"`` and readiness false; with none, the fallback
chain answers. A store that goes away stops neither loop nor the serving: the last known
keys and model stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from keel.serving.arms import Arms
from keel.serving.backend import ModelBackend
from keel.serving.cache import LastGood
from keel.serving.fallback import Rule
from keel.serving.features import FeatureClient
from keel.serving.state import ServerState, serve_model

if TYPE_CHECKING:
    from keel.serving.source import ModelSource
    from keel.store.metadata import MetadataStore

__all__ = ["Lifecycle"]

logger = logging.getLogger("keel.serving")
_RETIRE_AFTER_S = 30.0  # an old model's thread outlives any request that started on it
_RETRY_S = 60.0  # before trying again to load a version that failed


class Lifecycle:
    """Loads the model and keys, keeps them fresh, and shuts down cleanly."""

    def __init__(
        self,
        state: ServerState,
        *,
        source: ModelSource | None,
        model: ModelBackend | None,
        store: MetadataStore | None,
        rule: Rule | None,
        alert: Callable[[str, dict[str, Any]], None] | None = None,
        features: FeatureClient | None = None,
        resolve_alert: Callable[[], None] | None = None,
    ) -> None:
        self.state = state
        self.source = source
        self.model = model
        self.store = store
        self.rule = rule
        self.alert = alert
        self.resolve_alert = resolve_alert
        self.features = features
        self.last_good = LastGood()
        self._failed: tuple[str, float] | None = None  # (ref, when) of the last failed load
        self._tasks: list[asyncio.Task[None]] = []
        if state.served.model is None:  # until a model loads, the rule answers (if any)
            state.served = serve_model(
                None, state.settings, state.metrics, rule=rule, last_good=self.last_good
            )
        self.arms = _arms(state, source, rule, features)
        self.freeze_gc = False  # a server process sets it; tests in one process must not

    async def start(self) -> None:
        if self.store is not None:
            await self.refresh_keys()
        if self.model is not None:
            await self.install(self.model, None)
        elif self.source is not None:
            await self.check_source()
            if self.state.served.model is None:
                await self._stand_in()
        settings = self.state.settings
        if self.store is not None:
            self._spawn(self._every(settings.keys_refresh.total_seconds(), self.refresh_keys))
        if self.source is not None:
            self._spawn(self._every(settings.reload_interval.total_seconds(), self.check_source))
        if self.state.log is not None:
            tick = settings.log_seal_every.total_seconds() / 2  # sealed at most 1.5x late
            self._spawn(self._every(tick, self.state.log.tick))
        if self.freeze_gc:
            _freeze_startup_objects()

    async def stop(self) -> None:
        """Stop polling, then flush the prediction log (in-flight requests are done)."""
        self.state.draining = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.arms is not None:
            await self.arms.close()
        if self.state.log is not None:
            await asyncio.to_thread(self.state.log.close)
        _close(self.state.served.model)
        if self.features is not None:
            self.features.close()
        close_cache = getattr(self.state.cache, "close", None)
        if close_cache is not None:
            await close_cache()

    async def refresh_keys(self) -> None:
        from keel.serving.keys import KeyStore

        assert self.store is not None
        try:
            keys = await asyncio.to_thread(KeyStore(self.store).list, False)
        except Exception as error:
            self._store_down(error)
            return
        self.state.gate.keyring.replace(keys)
        self.state.metadata_ok = True

    async def check_source(self) -> None:
        """Load the production version if it changed since the last look."""
        assert self.source is not None
        try:
            ref = await asyncio.to_thread(self.source.current)
        except Exception as error:
            self._store_down(error)
            return
        self.state.metadata_ok = True
        served = self.state.served
        changed = ref != served.ref or served.stand_in_for is not None
        if ref is not None and changed and not self._recently_failed(ref):
            await self._switch(ref)
        if self.arms is not None:
            await self.arms.check()

    async def _switch(self, ref: str) -> None:
        assert self.source is not None
        try:
            model = await asyncio.to_thread(self.source.load, ref)
        except Exception as error:
            await self._load_failed(ref, error)
            return
        await self.install(model, ref)

    async def _stand_in(self) -> None:
        """Production failed to load and nothing is served: the newest earlier production
        version that loads answers for it, marked, until production loads."""
        failed = self.state.last_load_error
        earlier = getattr(self.source, "earlier", None)
        if failed is None or earlier is None or self.source is None:
            return
        try:
            refs: list[str] = await asyncio.to_thread(earlier, failed["ref"])
        except Exception as error:
            self._store_down(error)
            return
        for ref in refs:
            try:
                model = await asyncio.to_thread(self.source.load, ref)
            except Exception as error:
                logger.error("earlier version %s does not load either (%s)", ref, error)
                continue
            if await self.install(model, ref, stand_in_for=failed["ref"]):
                logger.critical("version %s stands in for %s, answers marked", ref, failed["ref"])
                return

    async def install(
        self, model: ModelBackend, ref: str | None, stand_in_for: str | None = None
    ) -> bool:
        """Warm ``model`` up, then make it the served one in a single assignment."""
        error = await self._warm(model)
        if error is not None:
            if stand_in_for is None:
                await self._load_failed(ref or model.version, error)
            return False
        previous = self.state.served
        self.state.served = serve_model(
            model,
            self.state.settings,
            self.state.metrics,
            ref=ref,
            rule=self.rule,
            last_good=self.last_good,
            features=self.features,
            stand_in_for=stand_in_for,
        )
        self.state.metrics.serving(model.version, previous.version if previous.model else None)
        self.state.ready = stand_in_for is None
        if previous.model is not None and previous.model is not model:
            asyncio.get_running_loop().call_later(_RETIRE_AFTER_S, _close, previous.model)
        if stand_in_for is None:
            self._failed = None
            logger.info("serving model %s", model.version)
            if ref is not None:
                await self._resolve_alert()
        return True

    async def _warm(self, model: ModelBackend) -> Exception | None:
        """Why ``model`` (or the feature store) cannot answer its warm-up rows, or None."""
        warm_up = getattr(model, "warm_up_rows", None)
        try:
            if warm_up is not None:
                await model.predict(warm_up())
            if self.features is not None:
                await self.features.warm_up()
        except Exception as error:
            return error
        return None

    def _recently_failed(self, ref: str) -> bool:
        """A version that failed to load is retried only after a pause (it may be transient)."""
        failed = self._failed
        return failed is not None and failed[0] == ref and time.monotonic() - failed[1] < _RETRY_S

    async def _load_failed(self, ref: str, error: Exception) -> None:
        self._failed = (ref, time.monotonic())
        self.state.metrics.load_failures.inc()
        self.state.last_load_error = {
            "ref": ref,
            "error": str(error) or repr(error),
            "at": time.time(),
        }
        served = self.state.served
        now = f"still serving {served.version}" if served.model else "no model is serving"
        summary = f"model {ref} failed to load ({error}); {now}"
        logger.critical(summary)
        if self.alert is not None:
            await self._raise_alert(summary, dict(self.state.last_load_error))

    async def _raise_alert(self, summary: str, details: dict[str, Any]) -> None:
        assert self.alert is not None
        try:
            await asyncio.to_thread(self.alert, summary, details)
        except Exception as error:  # the alert book is in the store, which may be down
            logger.error("could not record the critical alert: %r", error)

    async def _resolve_alert(self) -> None:
        """Production loaded: an open ``model_load_failed`` alert is resolved."""
        if self.resolve_alert is None:
            return
        try:
            await asyncio.to_thread(self.resolve_alert)
        except Exception as error:
            logger.error("could not resolve the model-load alert: %r", error)

    def _store_down(self, error: Exception) -> None:
        if self.state.metadata_ok is not False:
            logger.error("metadata store unreachable (%s); serving with what is loaded", error)
        self.state.metadata_ok = False

    def _spawn(self, coroutine: Any) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(coroutine))

    async def _every(self, seconds: float, job: Any) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except Exception:  # a bug in one round must not end the loop
                logger.exception("background job failed; retrying in %s s", seconds)


def _freeze_startup_objects() -> None:
    """Keep the garbage collector's full passes off what was loaded at start.

    The libraries and the model are a few hundred thousand objects that live as long as the
    process; a full collection walks them all, stalling the event loop for 100 ms or more.
    Frozen, they are never walked again (they are still freed by reference counting).
    """
    gc.collect()
    gc.freeze()


def _arms(
    state: ServerState, source: ModelSource | None, rule: Rule | None, features: Any
) -> Arms | None:
    """Canary and shadow support, for a source that knows about them (the registry)."""
    from keel.serving.source import RegistrySource

    if not isinstance(source, RegistrySource):
        return None
    return Arms(state, source, rule=rule, features=features)


def _close(model: ModelBackend | None) -> None:
    close = getattr(model, "close", None)
    if close is not None:
        close()
