"""Alert sinks: where an alert event goes. Each is one ``send(payload)`` that raises on
failure, so the outbox knows to try again.

- ``log``: a line on the ``keel.alerts`` logger;
- ``webhook``: the generic JSON payload POSTed as is;
- ``slack``: a Slack-compatible ``{"text": ...}`` message;
- ``pagerduty``: a PagerDuty Events API v2 ``trigger``/``resolve`` event, deduplicated
  by alert id;
- ``email``: a plain-text message over SMTP (``smtp://host:port``).
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import urlparse

import httpx

from keel.errors import AlertError

__all__ = [
    "EmailSink",
    "LogSink",
    "PagerDutySink",
    "Sink",
    "SlackSink",
    "WebhookSink",
    "build_sink",
]

logger = logging.getLogger("keel.alerts")
_TIMEOUT = httpx.Timeout(5.0)
_PAGERDUTY_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}


class Sink(Protocol):
    def send(self, payload: Mapping[str, Any]) -> None: ...


class LogSink:
    """Alert events as log lines."""

    def send(self, payload: Mapping[str, Any]) -> None:
        logger.warning("%s alert %s: %s", payload["severity"], payload["event"], payload["summary"])


class WebhookSink:
    """POST the alert event as JSON; any non-2xx answer is a failure to retry."""

    def __init__(self, url: str) -> None:
        self.url = url

    def body(self, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        return payload

    def send(self, payload: Mapping[str, Any]) -> None:
        response = httpx.post(self.url, json=self.body(payload), timeout=_TIMEOUT)
        response.raise_for_status()


class SlackSink(WebhookSink):
    """A Slack incoming-webhook message."""

    def body(self, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        icon = {"critical": ":rotating_light:", "warning": ":warning:"}.get(
            payload["severity"], ":information_source:"
        )
        state = "RESOLVED" if payload["event"] == "resolved" else payload["severity"].upper()
        return {"text": f"{icon} [{state}] {payload['summary']} (runbook: {payload['runbook']})"}


class PagerDutySink(WebhookSink):
    """PagerDuty Events API v2: trigger on open, resolve on resolve, dedup by alert id."""

    def __init__(self, url: str, routing_key: str) -> None:
        super().__init__(url)
        self.routing_key = routing_key

    def body(self, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        action = "resolve" if payload["event"] == "resolved" else "trigger"
        return {
            "routing_key": self.routing_key,
            "event_action": action,
            "dedup_key": payload["alert_id"],
            "payload": {
                "summary": payload["summary"],
                "source": payload["subject"],
                "severity": _PAGERDUTY_SEVERITY.get(payload["severity"], "info"),
                "custom_details": {"runbook": payload["runbook"], **payload["details"]},
            },
        }


class EmailSink:
    """A plain-text email per alert event, over SMTP."""

    def __init__(self, smtp: str, to: Sequence[str], sender: str = "keel@localhost") -> None:
        parsed = urlparse(smtp)
        if parsed.scheme != "smtp" or not parsed.hostname:
            raise AlertError(f"email sink smtp {smtp!r} must look like smtp://host:25")
        self.host, self.port = parsed.hostname, parsed.port or 25
        self.to, self.sender = list(to), sender

    def message(self, payload: Mapping[str, Any]) -> EmailMessage:
        message = EmailMessage()
        state = "resolved" if payload["event"] == "resolved" else payload["severity"]
        message["Subject"] = f"[keel {state}] {payload['summary']}"
        message["From"], message["To"] = self.sender, ", ".join(self.to)
        details = "\n".join(f"  {k}: {v}" for k, v in payload["details"].items())
        message.set_content(
            f"{payload['summary']}\n\nseverity: {payload['severity']}\n"
            f"runbook: {payload['runbook']}\nalert: {payload['alert_id']}\n\n{details}\n"
        )
        return message

    def send(self, payload: Mapping[str, Any]) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=5) as client:
            client.send_message(self.message(payload))


def build_sink(
    kind: str,
    url: str | None,
    routing_key: str | None = None,
    smtp: str | None = None,
    to: Sequence[str] = (),
) -> Sink:
    """The sink for one ``alerts.sinks`` entry of keel.yaml."""
    if kind == "log":
        return LogSink()
    if kind == "email":
        if not smtp or not to:
            raise AlertError("the email alert sink needs smtp: and to: in alerts.sinks")
        return EmailSink(smtp, to)
    if not url:
        raise AlertError(f"the {kind} alert sink needs a url: set url: in alerts.sinks")
    if kind == "webhook":
        return WebhookSink(url)
    if kind == "slack":
        return SlackSink(url)
    if kind == "pagerduty":
        if not routing_key:
            raise AlertError("the pagerduty alert sink needs routing_key: in alerts.sinks")
        return PagerDutySink(url, routing_key)
    raise AlertError(
        f"alert sink kind {kind!r} is not supported yet; use log, webhook, slack or pagerduty"
    )
