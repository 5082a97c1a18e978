"""``keel rollback`` and ``keel deployments``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from keel.cli._common import JsonOpt, ProjectOpt, emit, open_project

if TYPE_CHECKING:
    from rich.console import Console


def register(app: typer.Typer) -> None:
    app.command("rollback")(rollback)
    app.command("deployments")(deployments)


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
