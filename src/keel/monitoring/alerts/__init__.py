"""Alerts: rules over monitoring signals, one open alert per rule and subject, and an
outbox that delivers every alert event to its sinks, retrying until they accept it."""

from __future__ import annotations

from keel.monitoring.alerts.book import Alert, AlertBook, SinkRoute
from keel.monitoring.alerts.outbox import DeliveryResult, deliver
from keel.monitoring.alerts.rules import AlertState, Rule, decide, evaluate
from keel.monitoring.alerts.setup import (
    DEFAULT_RULES,
    drift_signals,
    rules_from_config,
    sinks_from_config,
)
from keel.monitoring.alerts.sinks import (
    EmailSink,
    LogSink,
    PagerDutySink,
    Sink,
    SlackSink,
    WebhookSink,
)

__all__ = [
    "DEFAULT_RULES",
    "Alert",
    "AlertBook",
    "AlertState",
    "DeliveryResult",
    "EmailSink",
    "LogSink",
    "PagerDutySink",
    "Rule",
    "Sink",
    "SinkRoute",
    "SlackSink",
    "WebhookSink",
    "decide",
    "deliver",
    "drift_signals",
    "evaluate",
    "rules_from_config",
    "sinks_from_config",
]
