"""``keel rollback``, ``keel deployments``, ``keel shadow`` and ``keel report delivery``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from keel.cli._common import JsonOpt, ProjectOpt, emit, open_project

if TYPE_CHECKING:
    from rich.console import Console

    from keel.delivery.shadow import ShadowReport


report = typer.Typer(help="Reports over the project's history.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("rollback")(rollback)
    app.command("deployments")(deployments)
    app.command("shadow")(shadow)
    report.command("delivery")(delivery)
    app.add_typer(report, name="report")


def rollback(
    reason: Annotated[str, typer.Option("--reason", help="Why: kept in the history.")],
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Serve the previous production model again; every replica switches within seconds."""
    from keel.delivery.deployments import rollback as roll_back
    from keel.training.provenance import actor

    version = roll_back(open_project(project), reason, actor())
    data = {"version": version.version, "name": version.name, "status": version.status}

    def human(out: Console) -> None:
        out.print(f"[green]✓[/] {version.name}@{version.version} is the production model again")

    emit(as_json, data, human)


def deployments(
    limit: Annotated[int, typer.Option(min=1, help="How many changes to show.")] = 20,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The history of production, shadow and canary changes, with who and why."""
    from keel.delivery.deployments import deployments as history

    events = history(open_project(project), limit)
    data = [event.to_dict() for event in events]

    def human(out: Console) -> None:
        if not events:
            out.print("no deployments yet; `keel deploy V` makes a gated version production")
        for event in events:
            when = datetime.fromtimestamp(event.at, UTC).strftime("%Y-%m-%d %H:%M:%S")
            forced = " [red](forced)[/]" if event.forced else ""
            out.print(
                f"{when}  version {event.version}: {event.from_status or '-'} -> "
                f"{event.to_status}  by {event.actor}{forced}  ({event.reason})"
            )

    emit(as_json, data, human)


def shadow(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """How the running shadow answers the same requests as production, and its verdict."""
    from keel.delivery.advance import shadow_report
    from keel.delivery.staging import staged

    opened = open_project(project)
    running = next((found for found in staged(opened) if found.kind == "shadow"), None)
    report = shadow_report(opened, running) if running is not None else None
    data: dict[str, object] | None = None
    if running is not None and report is not None:
        data = {"version": running.version, **report.to_dict()}

    def human(out: Console) -> None:
        if running is None or report is None:
            out.print("no shadow is running; `keel deploy V --shadow` starts one")
            return
        out.print(f"shadow version {running.version}: {report.requests} requests compared")
        for line in _report_lines(report):
            out.print(f"  {line}")
        verdict = "[green]ready for canary[/]" if report.ready else report.reason
        out.print(f"  verdict: {'[red]rejected[/] - ' if report.rejected else ''}{verdict}")

    emit(as_json, {"shadow": data}, human)


def _report_lines(report: ShadowReport) -> list[str]:
    causes = ", ".join(f"{count} {cause}" for cause, count in report.unanswered.items())
    lines = [f"unanswered by the shadow: {report.errors}" + (f" ({causes})" if causes else "")]
    if report.agreement is not None:
        lines.append(f"agreement with production: {report.agreement:.1%}")
    if report.error_delta is not None:
        lines.append(f"mean difference: {report.error_delta:.3f} sd of production's outputs")
    if report.latency_p50_ms is not None:
        lines.append(f"shadow latency p50: {report.latency_p50_ms:.1f} ms")
    if report.accuracy_production is not None and report.accuracy_shadow is not None:
        lines.append(
            f"accuracy on labelled requests: production {report.accuracy_production:.1%}, "
            f"shadow {report.accuracy_shadow:.1%}"
        )
    return lines


def delivery(
    days: Annotated[float, typer.Option("--days", min=1, help="The window, in days.")] = 30,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deployment frequency, lead time, change failure rate, time to restore and the age
    of the data behind the production model."""
    from keel.delivery.metrics import read_delivery, report_lines

    found = read_delivery(open_project(project), window_days=days)

    def human(out: Console) -> None:
        for line in report_lines(found.to_dict()):
            out.print(line)

    emit(as_json, found.to_dict(), human)
