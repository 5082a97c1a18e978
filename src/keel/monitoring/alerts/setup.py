"""From keel.yaml's ``alerts:`` section to rules, sink routes and sinks; drift signals.

Without rules of its own a project gets the two drift rules the blueprint asks for:
feature drift and prediction (output) drift, both warnings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from keel.monitoring.alerts.book import SinkRoute
from keel.monitoring.alerts.rules import Rule, check_expression
from keel.monitoring.alerts.sinks import Sink, build_sink
from keel.monitoring.results import ColumnDrift, DriftReport
from keel.schema import AlertsConfig

__all__ = [
    "DEFAULT_RULES",
    "describe",
    "drift_signals",
    "rules_from_config",
    "sinks_from_config",
]

DEFAULT_RULES = (
    Rule("feature_drift", "drifted_features > 0", "warning", "runbook#feature-drift"),
    Rule("prediction_drift", "output_drift", "warning", "runbook#prediction-drift"),
)


def rules_from_config(config: AlertsConfig | None) -> list[Rule]:
    """The configured rules (each condition checked now), or the default drift rules."""
    if config is None or not config.rules:
        return list(DEFAULT_RULES)
    rules = []
    for rule in config.rules:
        check_expression(rule.when)
        rules.append(
            Rule(
                name=rule.name,
                when=rule.when,
                severity=rule.severity,
                runbook=rule.runbook,
                cooldown=rule.cooldown.total_seconds(),
                clear_after=rule.clear_after,
                auto_resolve=rule.auto_resolve,
            )
        )
    return rules


def sinks_from_config(config: AlertsConfig | None) -> tuple[list[SinkRoute], dict[str, Sink]]:
    """Each configured sink under its name (``name:`` or ``<kind>-<n>``); a log sink if none."""
    if config is None or not config.sinks:
        return [SinkRoute("log", frozenset({"critical", "warning", "info"}))], {
            "log": build_sink("log", None)
        }
    routes, sinks = [], {}
    for index, spec in enumerate(config.sinks):
        name = spec.name or f"{spec.kind}-{index}"
        sinks[name] = build_sink(spec.kind, spec.url, spec.routing_key, spec.smtp, spec.to)
        routes.append(SinkRoute(name, frozenset(spec.severities)))
    return routes, sinks


def drift_signals(report: DriftReport) -> Mapping[str, Any]:
    """The names a rule's condition can use after a drift check, and under ``explain``
    the columns behind each, which an alert's summary names."""
    features = [c for c in report.columns if c.role != "output"]
    outputs = [c for c in report.columns if c.role == "output"]
    drifted_features = describe(c for c in features if c.decision == "drift")
    drifted_outputs = describe(c for c in outputs if c.decision == "drift")
    return {
        "drift": report.decision == "drift",
        "drifted_features": sum(c.decision == "drift" for c in features),
        "output_drift": any(c.decision == "drift" for c in outputs),
        "small_shifts": len(report.small_shifts),
        "untestable": len(report.untestable),
        "insufficient_data": report.decision == "insufficient_data",
        "max_effect": max((c.effect for c in report.columns), default=0.0),
        "rows": report.rows,
        "model_version": report.model_version,
        "drifted": ",".join(report.drifted),
        "explain": {
            "drift": describe(c for c in report.columns if c.decision == "drift"),
            "drifted": describe(c for c in report.columns if c.decision == "drift"),
            "drifted_features": drifted_features,
            "output_drift": drifted_outputs,
            "small_shifts": describe(c for c in report.columns if c.decision == "small_shift"),
        },
    }


def describe(columns: Iterable[ColumnDrift]) -> str:
    """``humidity (ks 0.21, p 2e-13, effect 0.21 >= 0.1)`` for each column, largest first."""
    ranked = sorted(columns, key=lambda c: -c.effect)
    return ", ".join(
        f"{c.column} ({c.test} {c.statistic:.3g}, p {c.p_adjusted:.2g}, "
        f"{c.effect_name} {c.effect:.3g} {'>=' if c.effect >= c.min_effect else '<'} "
        f"{c.min_effect:g})"
        for c in ranked
    )
