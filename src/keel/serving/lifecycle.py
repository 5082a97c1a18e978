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
keys and model stay, ``/readyz`` says ``degraded: "store unreachable since <time>"``, and
the failed reads are logged once per interval with their count (``keel.serving.outages``).

Each replica also keeps its view of the store (the served versions, the rollout records,
the keys) in a snapshot on local disk, written whenever that view changes
(``keel.serving.snapshot``). A server whose store is unreachable at start starts from the
snapshot instead: ready, degraded, answering with the snapshot's models and keys. When
the store answers again it reconciles: the schema is brought up to date, keys,
production, canary and shadow are read again (a deploy made meanwhile is switched to),
and the degraded flag is cleared.
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
from keel.serving.outages import OutageLog
from keel.serving.snapshot import SnapshotKeeper, degraded_since, iso_time, view_of
from keel.serving.state import ServerState, serve_model

if TYPE_CHECKING:
    from keel.serving.arms import Staging
    from keel.serving.keys import ApiKey
    from keel.serving.snapshot import Snapshot
    from keel.serving.source import ModelSource, RegistrySource
    from keel.store.metadata import MetadataStore

__all__ = ["Lifecycle"]

logger = logging.getLogger("keel.serving")
_RETIRE_AFTER_S = 30.0  # an old model's thread outlives any request that started on it
_RETRY_S = 60.0  # before trying again to load a version that failed
_DOWN: Any = object()  # what a store read returns when the store could not be reached


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
        snapshots: SnapshotKeeper | None = None,
    ) -> None:
        self.state = state
        self.source = source
        self.model = model
        self.store = store
        self.rule = rule
        self.alert = alert
        self.resolve_alert = resolve_alert
        self.features = features
        self.snapshots = snapshots
        self.last_good = LastGood()
        self._outage = OutageLog("metadata store reads", logger)
        self._unsaved = OutageLog("snapshot writes", logger)
        self._keys: tuple[ApiKey, ...] = ()  # as last read from the store (or the snapshot)
        self._current: Any = _DOWN  # the production ref the store named on the last look
        self._migrate = False  # started from a snapshot: the schema is checked on return
        self._failed: tuple[str, float] | None = None  # (ref, when) of the last failed load
        self._tasks: list[asyncio.Task[None]] = []
        if state.served.model is None:  # until a model loads, the rule answers (if any)
            state.served = serve_model(
                None, state.settings, state.metrics, rule=rule, last_good=self.last_good
            )
        self.arms = _arms(state, source, rule, features)
        self.freeze_gc = False  # a server process sets it; tests in one process must not

    async def start(self) -> None:
        start = self.snapshots.start if self.snapshots is not None else None
        if start is not None and start.snapshot is not None and start.since is not None:
            await self._start_from(start.snapshot, start.since)
        else:
            await self._start_from_store()
        self._spawn_loops()
        if self.freeze_gc:
            _freeze_startup_objects()

    async def _start_from_store(self) -> None:
        if self.store is not None:
            await self.refresh_keys()
        if self.model is not None:
            await self.install(self.model, None)
        elif self.source is not None:
            await self.check_source()
            if self.state.served.model is None:
                await self._stand_in()

    async def _start_from(self, snapshot: Snapshot, since: float) -> None:
        """The store is unreachable: serve the snapshot's models and keys, degraded."""
        registry = self._registry()
        assert registry is not None and self.store is not None
        self.state.degraded, self.state.metadata_ok = degraded_since(since), False
        self._migrate = True
        view = snapshot.view
        self._keys = view.keys
        self.state.gate.keyring.replace(view.keys)
        registry.seed(view.recipes)
        if view.production is not None:
            await self._switch(view.production.ref)
        if self.arms is not None:
            await self.arms.apply(view.staging())
        logger.warning(
            "the metadata store is unreachable: serving %s from the snapshot written at %s",
            self.state.served.version,
            iso_time(snapshot.written_at),
        )

    def _spawn_loops(self) -> None:
        settings = self.state.settings
        if self.store is not None:
            self._spawn(self._every(settings.keys_refresh.total_seconds(), self.refresh_keys))
        if self.source is not None:
            self._spawn(self._every(settings.reload_interval.total_seconds(), self.check_source))
        if self.state.log is not None:
            tick = settings.log_seal_every.total_seconds() / 2  # sealed at most 1.5x late
            self._spawn(self._every(tick, self.state.log.tick))

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

    async def refresh_keys(self) -> bool:
        """Read the active keys into the key ring; whether the store answered."""
        from keel.serving.keys import KeyStore

        assert self.store is not None
        keys = await self._read(KeyStore(self.store).list, False)
        if keys is _DOWN:
            return False
        self._keys = tuple(keys)
        self.state.gate.keyring.replace(keys)
        if self.source is None:
            self._reconciled()
        elif self.state.degraded is None:
            await self._keep_snapshot()
        return True

    async def check_source(self) -> None:
        """Load the production version if it changed since the last look (and the canary
        and shadow); after an outage, read the keys first and clear the degraded flag."""
        assert self.source is not None
        ref = await self._read(self.source.current)
        if ref is _DOWN or not await self._reconcile():
            return
        self._current = ref
        served = self.state.served
        changed = ref != served.ref or served.stand_in_for is not None
        if ref is not None and changed and not self._recently_failed(ref):
            await self._switch(ref)
        registry = self._registry()
        if self.arms is not None and registry is not None:
            staging: Staging = await self._read(registry.staged)
            if staging is _DOWN:
                return
            await self.arms.apply(staging)
        self._reconciled()
        await self._keep_snapshot()

    async def _reconcile(self) -> bool:
        """Before the first look after an outage: the schema (when the server started
        without the store) and the keys. Whether the store answered."""
        if self.state.degraded is None:
            return True
        if self._migrate:
            if await self._read(_migrate_schema, self.store) is _DOWN:
                return False
            self._migrate = False
        if self.store is not None and not await self.refresh_keys():
            return False
        registry = self._registry()
        if registry is not None:
            registry.forget_seeds()
        return True

    def _reconciled(self) -> None:
        """A whole look at the store succeeded: the server is no longer degraded."""
        if self.state.degraded is None:
            return
        logger.warning("reconciled with the metadata store (%s before)", self.state.degraded)
        self.state.degraded = None
        if self.state.served.ref is not None and self.state.served.stand_in_for is None:
            self._spawn(self._resolve_alert())

    async def _read(self, read: Callable[..., Any], *args: Any) -> Any:
        """``read(*args)`` in a thread, or ``_DOWN`` (logged, flagged) when it fails."""
        try:
            found = await asyncio.to_thread(read, *args)
        except Exception as error:
            self._store_down(error)
            return _DOWN
        self._outage.succeeded()
        self.state.metadata_ok = True
        return found

    async def _keep_snapshot(self) -> None:
        """Write the snapshot when the view of the store changed (and is a good one)."""
        registry = self._registry()
        if self.snapshots is None or registry is None or self._current is _DOWN:
            return
        view = view_of(self.state, registry, self._keys, self._current)
        if view is None or not self.snapshots.due(view):
            return
        try:
            await asyncio.to_thread(self.snapshots.save, view, time.time())
        except (OSError, ValueError) as error:  # the disk is full, say: serving goes on
            self._unsaved.failed(error)
            return
        self._unsaved.succeeded()

    def _registry(self) -> RegistrySource | None:
        from keel.serving.source import RegistrySource

        return self.source if isinstance(self.source, RegistrySource) else None

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
            if ref is not None and self.state.degraded is None:  # else on reconciling
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
        if self.alert is not None and self.state.degraded is None:  # the book is in the store
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
        self._outage.failed(error)
        if self.state.degraded is None:
            self.state.degraded = degraded_since(time.time())
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


def _migrate_schema(store: MetadataStore) -> None:
    """Bring the schema up to date (``keel serve`` could not, the store being down)."""
    from keel.store.metadata import MetadataStore

    MetadataStore.open(store.engine.url.render_as_string(hide_password=False)).close()


def _close(model: ModelBackend | None) -> None:
    close = getattr(model, "close", None)
    if close is not None:
        close()
