"""``keel alerts list | ack | resolve``: the alerts monitoring raised."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keel.cli._common import JsonOpt, ProjectOpt, emit

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["app"]

app = typer.Typer(help="Alerts raised by monitoring: list, acknowledge, resolve.")


@app.command("list")
def alerts_list(
    status: Annotated[
        str | None, typer.Option("--status", help="open, acknowledged or resolved.")
    ] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List alerts, newest first."""
    from keel.errors import AlertError
    from keel.monitoring.alerts import AlertBook

    if status not in (None, "open", "acknowledged", "resolved"):
        raise AlertError(f"unknown --status {status!r}; use open, acknowledged or resolved")
    with _project(project) as opened:
        found = [alert.to_dict() for alert in AlertBook(opened.store).list(status)]
    emit(as_json, found, lambda out: _print_alerts(out, found))


@app.command("ack")
def alerts_ack(
    alert_id: Annotated[str, typer.Argument(help="The alert id (or its first characters).")],
    by: Annotated[str, typer.Option("--by", help="Who is on it.")] = "",
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Acknowledge an alert: someone is on it; it stays open until resolved."""
    import getpass
    import time

    from keel.monitoring.alerts import AlertBook

    with _project(project) as opened:
        alert = AlertBook(opened.store).acknowledge(alert_id, by or getpass.getuser(), time.time())
    data = alert.to_dict()
    emit(as_json, data, lambda out: out.print(f"acknowledged {data['id'][:8]} ({data['rule']})"))


@app.command("resolve")
def alerts_resolve(
    alert_id: Annotated[str, typer.Argument(help="The alert id (or its first characters).")],
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Resolve an alert by hand; its sinks are told."""
    import time

    from keel.monitoring.alerts import AlertBook
    from keel.monitoring.alerts.setup import sinks_from_config

    with _project(project) as opened:
        routes, _ = sinks_from_config(opened.config.alerts)
        alert = AlertBook(opened.store, routes).resolve(alert_id, time.time())
    data = alert.to_dict()
    emit(as_json, data, lambda out: out.print(f"resolved {data['id'][:8]} ({data['rule']})"))


def _project(path: Path | None) -> Any:
    from keel.project import Project

    return Project.open(path)


def _print_alerts(out: Console, found: list[dict[str, Any]]) -> None:
    from rich.table import Table

    if not found:
        out.print("no alerts")
        return
    table = Table("id", "severity", "status", "rule", "subject", "summary", "runbook")
    for a in found:
        table.add_row(
            a["id"][:8], a["severity"], a["status"], a["rule"], a["subject"], a["summary"],
            a["runbook"] or "",
        )  # fmt: skip
    out.print(table)
