"""The human interface: the web dashboard at ``/ui`` and the on-call runbook.

``create_ui_app(project)`` is an ASGI app answering every path under ``/ui`` with its own
login (a signed session cookie kept in the metadata store, so every replica honours it;
keys with the viewer scope can view, admin keys can also act).
``write_runbook(project, out, now)`` writes ``runbook.md`` and ``runbook.html``; each alert
rule's entry sits at ``runbook_anchor(rule_name)``.
"""

from __future__ import annotations

from keel.ui.app import Dashboard, HealthProbe
from keel.ui.render import render_html, render_markdown, runbook_for, write_runbook
from keel.ui.routes import create_ui_app, ui_routes
from keel.ui.runbook import Entry, Runbook, build_runbook, runbook_anchor
from keel.ui.session import Session, SessionBook, Signer

__all__ = [
    "Dashboard",
    "Entry",
    "HealthProbe",
    "Runbook",
    "Session",
    "SessionBook",
    "Signer",
    "build_runbook",
    "create_ui_app",
    "render_html",
    "render_markdown",
    "runbook_anchor",
    "runbook_for",
    "ui_routes",
    "write_runbook",
]
