"""Alerts in the metadata store (SQLite and PostgreSQL) and delivery to real HTTP sinks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keel.errors import AlertError
from keel.monitoring.alerts import (
    AlertBook,
    PagerDutySink,
    Rule,
    SinkRoute,
    SlackSink,
    WebhookSink,
    deliver,
)
from keel.store.metadata import MetadataStore

from .receiver import Receiver

ALL = frozenset({"critical", "warning", "info"})
RULE = Rule("feature_drift", "drifted_features > 0", "warning", cooldown=600, clear_after=2)


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    """A migrated metadata store on each backend."""
    opened = MetadataStore.open(store_url)
    yield opened
    opened.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local HTTP receiver for webhook deliveries."""
    running = Receiver()
    yield running
    running.close()


def test_one_open_alert_per_rule_and_subject(store: MetadataStore) -> None:
    """Firing three times opens one alert and queues one 'opened' delivery."""
    book = AlertBook(store, [SinkRoute("hook", ALL)])
    actions = [book.observe(RULE, {"drifted_features": 2}, now=t) for t in (0.0, 60.0, 120.0)]
    assert actions == ["open", "refresh", "refresh"]
    assert len(book.list("open")) == 1
    assert deliver(store, {}, now=200.0).pending == 1


def test_alerts_auto_resolve_after_consecutive_clear_checks(store: MetadataStore) -> None:
    """Hysteresis: one clear check leaves it open, the second resolves it."""
    book = AlertBook(store)
    book.observe(RULE, {"drifted_features": 1}, now=0.0)
    assert book.observe(RULE, {"drifted_features": 0}, now=60.0) == "clearing"
    assert book.observe(RULE, {"drifted_features": 3}, now=120.0) == "refresh"
    assert book.observe(RULE, {"drifted_features": 0}, now=180.0) == "clearing"
    assert book.observe(RULE, {"drifted_features": 0}, now=240.0) == "resolve"
    assert [a.status for a in book.list()] == ["resolved"]


def test_a_resolved_rule_cools_down_before_reopening(store: MetadataStore) -> None:
    """Within the cooldown a firing rule is suppressed; after it, a new alert opens."""
    book = AlertBook(store)
    book.observe(RULE, {"drifted_features": 1}, now=0.0)
    book.resolve(book.list()[0].id, now=10.0)
    assert book.observe(RULE, {"drifted_features": 1}, now=100.0) == "suppressed"
    assert book.observe(RULE, {"drifted_features": 1}, now=700.0) == "open"
    assert [a.status for a in book.list()] == ["open", "resolved"]


def test_acknowledge_keeps_the_alert_open_and_names_who(store: MetadataStore) -> None:
    """An acknowledged alert is still the rule's open alert; it records who took it."""
    book = AlertBook(store)
    book.observe(RULE, {"drifted_features": 1}, now=0.0)
    alert = book.acknowledge(book.list()[0].id[:8], by="ana", now=5.0)
    assert alert.status == "acknowledged" and alert.acknowledged_by == "ana"
    assert book.observe(RULE, {"drifted_features": 1}, now=60.0) == "refresh"


def test_unknown_alert_id_is_a_user_error(store: MetadataStore) -> None:
    """Acknowledging an id nobody has is one sentence pointing at `keel alerts list`."""
    with pytest.raises(AlertError, match="keel alerts list"):
        AlertBook(store).acknowledge("ffff", by="ana", now=0.0)


def test_sinks_only_get_the_severities_they_asked_for(store: MetadataStore) -> None:
    """A critical-only sink gets nothing for a warning; an all-severity sink gets it."""
    book = AlertBook(store, [SinkRoute("pager", frozenset({"critical"})), SinkRoute("hook", ALL)])
    book.observe(RULE, {"drifted_features": 1}, now=0.0)
    assert deliver(store, {}, now=1.0).pending == 1


def test_webhook_receives_the_alert_and_its_resolution(
    store: MetadataStore, receiver: Receiver
) -> None:
    """Open then resolve: the receiver gets two JSON events naming the runbook."""
    book = AlertBook(store, [SinkRoute("hook", ALL)])
    sinks = {"hook": WebhookSink(receiver.url)}
    book.observe(RULE, {"drifted_features": 1}, now=0.0)
    book.resolve(book.list()[0].id, now=30.0)
    result = deliver(store, sinks, now=31.0)
    assert (result.delivered, result.pending) == (2, 0)
    assert [b["event"] for b in receiver.bodies] == ["opened", "resolved"]
    assert receiver.bodies[0]["runbook"] and receiver.bodies[0]["details"]["drifted_features"] == 1


def test_an_hour_long_sink_outage_loses_no_alert(store: MetadataStore, receiver: Receiver) -> None:
    """The receiver fails for an hour of retries; when it recovers the alert arrives once."""
    book = AlertBook(store, [SinkRoute("hook", ALL)])
    sinks = {"hook": WebhookSink(receiver.url)}
    book.observe(RULE, {"drifted_features": 1}, now=0.0)
    receiver.status = 503
    failures = sum(deliver(store, sinks, now=float(t)).failed for t in range(0, 3600, 60))
    assert failures >= 10 and receiver.bodies == []
    receiver.status = 200
    assert deliver(store, sinks, now=3900.0).delivered == 1
    assert deliver(store, sinks, now=4500.0).delivered == 0
    assert len(receiver.bodies) == 1


def test_slack_and_pagerduty_payloads(store: MetadataStore, receiver: Receiver) -> None:
    """Slack gets a text message; PagerDuty an Events v2 trigger deduplicated by alert id."""
    book = AlertBook(store, [SinkRoute("slack", ALL), SinkRoute("pd", ALL)])
    sinks = {"slack": SlackSink(receiver.url), "pd": PagerDutySink(receiver.url, "key-1")}
    book.observe(RULE, {"drifted_features": 1}, now=0.0)
    deliver(store, sinks, now=1.0)
    slack, pagerduty = receiver.bodies
    assert "feature_drift" in slack["text"] and "runbook" in slack["text"]
    assert pagerduty["event_action"] == "trigger" and pagerduty["routing_key"] == "key-1"
    assert pagerduty["dedup_key"] == book.list()[0].id
    assert pagerduty["payload"]["severity"] == "warning"


def test_email_sink_sends_over_smtp(store: MetadataStore) -> None:
    """An alert event arrives at a real SMTP receiver on loopback, subject and runbook."""
    from keel.monitoring.alerts import EmailSink

    from .smtp_receiver import SmtpReceiver

    smtp = SmtpReceiver()
    try:
        book = AlertBook(store, [SinkRoute("mail", ALL)])
        book.observe(RULE, {"drifted_features": 4}, now=0.0)
        sinks = {"mail": EmailSink(smtp.url, ["oncall@example.com"])}
        assert deliver(store, sinks, now=1.0).delivered == 1
    finally:
        smtp.close()
    (message,) = smtp.messages
    assert message["To"] == "oncall@example.com"
    assert "[keel warning] feature_drift" in message["Subject"]
    assert "runbook" in message.get_payload()
