"""The on-call runbook, built from keel.yaml: every alert rule, what to run, whom to call.

``build_runbook`` is pure (config and a few facts in, a ``Runbook`` out); the renderers
turn it into Markdown or HTML; ``write_runbook`` is the thin shell ``keel runbook`` uses.
Each entry has a stable anchor (``runbook_anchor``) that alerts and the dashboard link to.
Besides the rules, ``keel.ui.events.EVENTS`` lists the one-off events Keel raises through
``AlertBook.event`` (a retrain's outcome, rollout steps, a model that failed to load),
each with its severity and what on-call does about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from keel.errors import ExpressionError
from keel.expressions import ALERT_CONDITION, parse
from keel.ui.anchors import RESPONSE, alias, runbook_anchor
from keel.ui.events import EVENTS, Event

if TYPE_CHECKING:
    from keel.monitoring.alerts.rules import Rule
    from keel.schema import KeelConfig

__all__ = [
    "RESPONSE",
    "SIGNALS",
    "Entry",
    "Event",
    "Runbook",
    "build_runbook",
    "generated",
    "rule_signals",
    "runbook_anchor",
]

SIGNALS = {
    "drift": "any monitored column drifted in the last window",
    "drifted_features": "how many input features drifted in the last window",
    "output_drift": "the model's own outputs (predictions, confidence) drifted",
    "insufficient_data": "the window was too small to see the effect that matters",
    "max_effect": "the largest drift effect size over all columns",
    "rows": "how many predictions the window held",
    "drifted": "the names of the drifted columns, comma-separated",
}

_DRIFT_SIGNALS = frozenset(SIGNALS)


@dataclass(frozen=True)
class Entry:
    """One alert rule as on-call reads it."""

    name: str
    anchor: str
    severity: str
    when: str
    builtin: bool
    active: bool
    signals: list[tuple[str, str]]
    unknown: list[str]
    diagnose: list[str]
    mitigate: list[str]

    @property
    def response(self) -> str:
        return RESPONSE.get(self.severity, "")

    @property
    def alias(self) -> str | None:
        """The rule's own name as a second anchor (alerts link ``runbook#<name>``), if
        it differs from the slug and is a valid anchor."""
        return alias(self.name, self.anchor)


@dataclass(frozen=True)
class Runbook:
    """The whole document."""

    project: str
    generated_at: float
    entries: list[Entry]
    contacts: list[tuple[str, str, str]]
    sinks: list[tuple[str, str]]
    places: list[tuple[str, str]]
    rollback: str
    events: list[Event] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def rule_signals(when: str) -> list[str]:
    """The signal names a rule's condition reads, in order of first use (none when it is
    not a condition ``keel config check`` would pass)."""
    try:
        return parse(when, ALERT_CONDITION).names
    except ExpressionError:
        return []


def build_runbook(
    config: KeelConfig, now: float, production: int | None = None, previous: int | None = None
) -> Runbook:
    """The runbook for ``config``; ``production``/``previous`` name the versions to roll
    between, when the registry has them."""
    from keel.monitoring.alerts.setup import DEFAULT_RULES, rules_from_config

    configured = rules_from_config(config.alerts) if _has_rules(config) else []
    taken = {rule.name for rule in configured}
    rollback = _rollback(production, previous)
    entries = [_entry(rule, config, False, True, rollback) for rule in configured]
    entries += [
        _entry(rule, config, True, not configured, rollback)
        for rule in DEFAULT_RULES
        if rule.name not in taken
    ]
    alerts = config.alerts
    return Runbook(
        project=config.name,
        generated_at=now,
        entries=entries,
        contacts=[
            (c.name, c.role or "", c.reach or "") for c in (alerts.contacts if alerts else [])
        ],
        sinks=_sinks(config),
        places=_places(config),
        rollback=rollback,
        events=[_event(event, rollback) for event in EVENTS],
        notes=_notes(config, production),
    )


def _has_rules(config: KeelConfig) -> bool:
    return config.alerts is not None and bool(config.alerts.rules)


def _entry(rule: Rule, config: KeelConfig, builtin: bool, active: bool, rollback: str) -> Entry:
    names = rule_signals(rule.when)
    return Entry(
        name=rule.name,
        anchor=runbook_anchor(rule.name),
        severity=rule.severity,
        when=rule.when,
        builtin=builtin,
        active=active,
        signals=[(name, SIGNALS[name]) for name in names if name in SIGNALS],
        unknown=[name for name in names if name not in SIGNALS],
        diagnose=_diagnose(names, config),
        mitigate=_mitigate(names, rollback),
    )


def _event(event: Event, rollback: str) -> Event:
    return replace(event, mitigate=tuple(step.format(rollback=rollback) for step in event.mitigate))


def _window(config: KeelConfig) -> str:
    window = config.monitoring.window if config.monitoring else timedelta(hours=1)
    if not isinstance(window, timedelta):
        return ""
    minutes = int(window.total_seconds() // 60)
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def _diagnose(signals: list[str], config: KeelConfig) -> list[str]:
    commands = ["keel status", "keel alerts list --status open"]
    if _DRIFT_SIGNALS & set(signals):
        has_reference = config.monitoring is not None and config.monitoring.reference
        window = _window(config)
        drift = "keel drift" + (f" --window {window}" if window else "")
        commands.append(drift if has_reference else drift + " --reference TRAINING_DATA.csv")
        commands += ["keel data runs", "keel registry show production"]
    else:
        commands += ["keel monitor --once --json", "keel registry show production"]
    return commands


def _mitigate(signals: list[str], rollback: str) -> list[str]:
    steps = ["Acknowledge so others know someone is on it: `keel alerts ack ALERT_ID --by NAME`."]
    if _DRIFT_SIGNALS & set(signals):
        steps.append(
            "If an upstream change caused it (new source version, broken feed), fix the feed; "
            "`keel data runs` shows what was ingested and `keel data report RUN --out r.html` why."
        )
        steps.append(
            "If the world changed, retrain on recent data: `keel ingest`, `keel train`, then "
            "`keel deploy latest` once the gate passes."
        )
    steps.append(f"If the current model misbehaves, roll back: {rollback}")
    steps.append(
        "When the cause is fixed: `keel alerts resolve ALERT_ID` (it also resolves itself)."
    )
    return steps


def _rollback(production: int | None, previous: int | None) -> str:
    if previous is not None:
        return (
            f"`keel rollback --reason 'WHY'` serves version {previous} again on every replica "
            "within seconds (`keel deployments` shows the history; the dashboard's "
            "Deployments page has a button for admin keys)."
        )
    return (
        "`keel rollback --reason 'WHY'` serves the previous production version again; with "
        "no earlier version, deploy one with `keel deploy VERSION --reason 'WHY'` "
        "(`keel registry list` shows them)."
    )


def _sinks(config: KeelConfig) -> list[tuple[str, str]]:
    if config.alerts is None or not config.alerts.sinks:
        return [("log", "critical, warning, info (the monitor's log; no sink is configured)")]
    return [
        (sink.name or f"{sink.kind}-{index}", ", ".join(sink.severities))
        for index, sink in enumerate(config.alerts.sinks)
    ]


def _places(config: KeelConfig) -> list[tuple[str, str]]:
    monitoring = config.monitoring
    log = monitoring.log if monitoring and monitoring.log else ".keel/predictions/"
    store = config.store and "the `store:` URL in keel.yaml (`keel config check` shows it masked)"
    return [
        ("Prediction log", f"`{log}` (spool), segments in the artifact store"),
        ("Metadata store", store or "`.keel/keel.db` (SQLite), or `$KEEL_STORE_URL`"),
        ("Artifacts", f"`{config.artifacts or '.keel/artifacts/'}`: models, data, segments"),
        ("Validation reports", "`keel data runs`; `keel data report RUN --out report.html`"),
        ("Model history", "`keel registry list`; `keel registry show VERSION`"),
        ("Server", "stdout/stderr of `keel serve`; `GET /readyz`, `/v1/status`, `/metrics`"),
        ("Dashboard", "`/ui` on the model server (any key signs in; admin keys can act)"),
    ]


def _notes(config: KeelConfig, production: int | None) -> list[str]:
    notes = []
    if config.alerts is None or not config.alerts.contacts:
        notes.append(
            "No escalation contacts: add alerts.contacts (name, role, reach) to keel.yaml."
        )
    if production is None:
        notes.append("No model is in production yet: nothing to roll back to.")
    if config.monitoring is None or not config.monitoring.reference:
        notes.append(
            "monitoring.reference is not set: `keel monitor` cannot check drift, so the drift "
            "alerts below cannot fire until it is."
        )
    return notes


def generated(runbook: Runbook) -> str:
    return f"{datetime.fromtimestamp(runbook.generated_at, UTC):%Y-%m-%d %H:%M} UTC"
