"""The app factory: ``create_app(project)`` wires settings, keys, cache, log and model.

The app it returns is a ``keel.serving.asgi.KeelApp``: the gateway, the hot predict
path, FastAPI for the other routes, and the lifespan that loads and flushes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from keel.schema import ServingConfig
from keel.serving.api import build_api
from keel.serving.asgi import UI_PREFIX, KeelApp
from keel.serving.cache import MemoryCache, RedisCache, ResponseCache
from keel.serving.fallback import load_rule
from keel.serving.features import FeatureClient
from keel.serving.gatekeeper import Gatekeeper
from keel.serving.keys import ApiKey, KeyRing
from keel.serving.lifecycle import Lifecycle
from keel.serving.logwriter import LogWriter, PredictionSink, SealingLog, ShippingLog
from keel.serving.metrics import Metrics
from keel.serving.snapshot import keeper_for
from keel.serving.source import ModelSource, RegistrySource
from keel.serving.state import ServerState, compile_actions, serve_model

if TYPE_CHECKING:
    from keel.monitoring.alerts.rules import Severity
    from keel.project import Project
    from keel.serving.backend import ModelBackend

__all__ = ["check_settings", "create_app"]

_PREDICT = "/v1/predict"


def create_app(
    project: Project,
    *,
    model: ModelBackend | None = None,
    source: ModelSource | None = None,
    keys: Iterable[ApiKey] = (),
    log: PredictionSink | None = None,
    settings: ServingConfig | None = None,
) -> KeelApp:
    """The server for ``project``: its production model, or ``model`` if one is handed in.

    ``model`` is any ``ModelBackend`` (``SklearnBackend`` for a fitted estimator). Without
    one, ``source`` (by default the project's registry) names and loads the model.

    Keys come from the project's store (plus ``keys``, for tests); predictions go to the
    project's prediction log unless ``log`` is given or ``serving.log_predictions`` is off.
    Serving the registry with the store's keys, the server keeps a snapshot of both and
    starts from it when the store is unreachable (see ``keel.serving.snapshot``).
    """
    settings = settings or project.config.serving or ServingConfig()
    snapshots = None
    if model is None and source is None and not keys:  # the registry's models, store's keys
        snapshots = keeper_for(project)  # opens the store, or starts from the snapshot
        source = RegistrySource(project, settings.interval, cache=snapshots.folder.cache)
    metrics = Metrics()
    gate = Gatekeeper(KeyRing(keys), settings.rate_limit, settings.rate_limit_url)
    state = ServerState(
        settings=settings,
        metrics=metrics,
        gate=gate,
        served=serve_model(None, settings, metrics),
        cache=_cache(settings),
        log=_log(project, settings, log),
        actions=compile_actions(settings),
    )
    rule = load_rule(settings.rule, project.root) if settings.rule else None
    if model is None and source is None:
        source = RegistrySource(project, coverage=settings.interval)
    store = project.store if not keys else None
    lifecycle = Lifecycle(
        state,
        source=source,
        model=model,
        store=store,
        rule=rule,
        alert=_alerter(project),
        features=_feature_store(project),
        resolve_alert=_alert_resolver(project),
        snapshots=snapshots,
    )
    app = KeelApp(state, build_api(state, project.store), lifecycle)
    if settings.dashboard:
        from keel.serving.proxy import behind_proxy
        from keel.ui import create_ui_app

        dashboard = create_ui_app(project, prefix=UI_PREFIX, health=app.readiness)
        app.ui = behind_proxy(dashboard, settings.proxy)
    return app


def check_settings(project: Project) -> ServingConfig:
    """The project's serving settings, with the rule and actions compiled once to fail early.

    ``keel serve`` calls this before starting workers, so a bad ``serving.rule`` or action
    is one sentence on the command line instead of a traceback in every worker.
    """
    settings = project.config.serving or ServingConfig()
    if settings.rule:
        load_rule(settings.rule, project.root)
    compile_actions(settings)
    return settings


def _feature_store(project: Project) -> FeatureClient | None:
    """The project's feature store when keel.yaml has a features: section, else None."""
    if project.config.features is None:
        return None
    from keel.features import FeatureStore

    return FeatureClient(FeatureStore.open(project))


def _alerter(project: Project) -> Callable[[str, dict[str, Any]], None]:
    """Opens (or refreshes) the critical ``model_load_failed`` alert in the monitoring
    layer's alert book (delivered by its outbox); it stays open until a model loads."""

    def alert(summary: str, details: dict[str, Any]) -> None:
        signals = {**details, "firing": True, "explain": {"firing": summary}}
        _alert(project, "model_load_failed", signals, "critical")

    return alert


def _alert_resolver(project: Project) -> Callable[[], None]:
    """Resolves an open ``model_load_failed`` alert once the production version loads."""
    return lambda: _alert(project, "model_load_failed", {"firing": False}, "critical")


def _alert(project: Project, name: str, signals: dict[str, Any], severity: Severity) -> None:
    """Apply one observation of the alert ``name`` (open while ``signals["firing"]``)."""
    from keel.monitoring.alerts import AlertBook, Rule, sinks_from_config

    # no cooldown (a failure after a fix opens it again); resolved on the first clear look
    rule = Rule(name, "firing", severity, cooldown=0.0, clear_after=1)
    routes, _ = sinks_from_config(project.config.alerts)
    AlertBook(project.store, routes).observe(rule, signals, time.time(), subject="serving")


def _cache(settings: ServingConfig) -> ResponseCache | None:
    spec = settings.cache
    if spec is None:
        return None
    ttl = spec.ttl.total_seconds()
    return RedisCache(spec.url, ttl) if spec.url else MemoryCache(ttl, spec.max_entries)


def _log(
    project: Project, settings: ServingConfig, sink: PredictionSink | None
) -> LogWriter | None:
    if sink is not None:
        return LogWriter(sink, inline=not settings.log_fsync)
    if not settings.log_predictions:
        return None
    from keel.monitoring.log import PredictionLog

    inline = not settings.log_fsync
    if settings.log_roll == "server":
        prediction_log = PredictionLog.for_project(project, sync=settings.log_fsync, shipped=None)
        prediction_log.start_flusher(settings.log_seal_every.total_seconds())
        return LogWriter(prediction_log, inline=inline)
    every = settings.log_seal_every.total_seconds()
    if settings.log_roll == "ship":
        from keel.monitoring.shipping import SpoolDrop, SpoolShipper

        drop = SpoolDrop.for_artifacts(project.artifacts)
        shipping = ShippingLog(
            lambda: PredictionLog.for_project(project, sync=settings.log_fsync, sketcher=None,
                                              shipped=None),
            every,
            lambda folder: SpoolShipper(folder / "spool", drop, interval=every),
        )  # fmt: skip
        return LogWriter(shipping, inline=inline)
    from keel.monitoring.cycle import project_sketcher

    options = {"sync": settings.log_fsync, "sketcher": project_sketcher(project)}
    sealing = SealingLog(lambda: PredictionLog.for_project(project, **options), every)
    return LogWriter(sealing, inline=inline)
