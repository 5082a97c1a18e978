"""One monitoring cycle of a project: roll the log, check drift, update alerts, deliver.

``keel monitor --once`` runs exactly this; ``keel monitor`` and the worker run it on a
schedule. Every step is a thin call into the pure parts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.monitoring.alerts import AlertBook, deliver, drift_signals, rules_from_config
from keel.monitoring.alerts.setup import sinks_from_config
from keel.monitoring.log import PredictionLog
from keel.monitoring.project_reference import project_reference, project_sketcher, reference_model
from keel.monitoring.wiring import (
    WindowChoice,
    drift_settings,
    load_reference,
    reference_options,
    run_drift,
)

if TYPE_CHECKING:
    from keel.project import Project
    from keel.schema import MonitoringConfig

__all__ = [
    "CycleResult",
    "open_log",
    "project_reference",
    "project_sketcher",
    "reference_model",
    "run_cycle",
    "window_choice",
]


@dataclass(frozen=True)
class CycleResult:
    """What one cycle found and did."""

    drift: dict[str, Any]
    alerts: dict[str, str] = field(default_factory=dict)
    delivered: int = 0
    failed: int = 0
    pending: int = 0
    retrain: dict[str, Any] | None = None
    performance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "drift": self.drift,
            "alerts": self.alerts,
            "deliveries": {
                "delivered": self.delivered,
                "failed": self.failed,
                "pending": self.pending,
            },
            "retrain": self.retrain,
            "performance": self.performance,
        }


def open_log(project: Project, folder: Path | None = None) -> PredictionLog:
    """The project's prediction log, or the log in ``folder``."""
    return PredictionLog(folder) if folder is not None else PredictionLog.for_project(project)


def window_choice(config: MonitoringConfig | None) -> WindowChoice:
    """``monitoring.window``: a duration (``1h``) or ``{rows: N}``."""
    window = config.window if config is not None else timedelta(hours=1)
    if isinstance(window, timedelta):
        return WindowChoice(duration=window)
    return WindowChoice(last=int(window.get("rows", 1000)))


def run_cycle(
    project: Project, reference: Path | None = None, now: float | None = None
) -> CycleResult:
    """Roll the log, check the configured window for drift, update alerts, deliver them."""
    now = time.time() if now is None else now
    config = project.config.monitoring
    log = open_log(project)
    try:
        log.flush()
        options = reference_options(config.drift if config else None)
        if reference is not None:
            ref = load_reference(reference, log, None, **options)
        else:
            ref = project_reference(project, config.reference if config else None, log, options)
        moment = datetime.fromtimestamp(now, UTC)
        choice = window_choice(config)
        if reference is None and config is not None:
            choice = replace(choice, prefer_version=reference_model(project, config.reference))
        settings = drift_settings(config.drift if config else None)
        report = run_drift(log, ref, choice, settings, moment, project.config.compute)
        performance = performance_signals(project, log, choice, moment)
    finally:
        log.close(flush=False)
    routes, sinks = sinks_from_config(project.config.alerts)
    book = AlertBook(project.store, routes)
    signals = {**drift_signals(report), **performance}
    actions = {
        rule.name: book.observe(rule, signals, now)
        for rule in rules_from_config(project.config.alerts)
    }
    realised = {k: v for k, v in performance.items() if isinstance(v, float)}
    retrain = _retrain(project, report.decision == "drift", realised, now)
    sent = deliver(project.store, sinks, now)
    return CycleResult(
        report.to_dict(),
        dict(actions),
        sent.delivered,
        sent.failed,
        sent.pending,
        retrain,
        dict(performance),
    )


def performance_signals(
    project: Project, log: PredictionLog, choice: WindowChoice, now: datetime
) -> dict[str, Any]:
    """The window's metrics as rule signals (``monitoring.performance.score`` set).

    Realised metrics keep their names (``roc_auc``); estimates before labels mature are
    ``estimated_roc_auc`` and so on, so a rule on the realised metric never fires on a
    guess. Business metrics appear under their declared names.
    """
    config = project.config.monitoring
    spec = config.performance if config else None
    if spec is None or spec.score is None:
        return {}
    from keel.errors import MonitoringError
    from keel.monitoring.feedback import window_report

    business = [(b.name, b.outcome, b.agg) for b in spec.business]
    try:
        result, labelled = window_report(
            log, project.store, choice, score=spec.score, kind=spec.kind,
            label_delay=spec.label_delay, now=now, business=business, project=project,
        )  # fmt: skip
    except MonitoringError:
        return {}
    prefix = "estimated_" if result.estimated else ""
    return {
        **{f"{prefix}{name}": value for name, value in result.metrics.items()},
        **result.business,
        "labelled": labelled,
        "labels_mature": result.mature,
    }


def _retrain(
    project: Project, drift: bool, metrics: dict[str, float], now: float
) -> dict[str, Any] | None:
    """Ask the retrain policy (``monitoring.retrain``), if one is configured."""
    config = project.config.monitoring
    if config is None or not config.retrain.on:
        return None
    from keel.monitoring.retrain import RetrainPolicy, RetrainSignals, RetrainTrigger

    trigger = RetrainTrigger(project, RetrainPolicy.from_config(config.retrain))
    decision = trigger.maybe_run(RetrainSignals(drift=drift, metrics=metrics), now)
    return {
        "run": decision.run,
        "reasons": list(decision.reasons),
        "blocked_by": decision.blocked_by,
    }
