"""``keel runbook``: write the on-call runbook (Markdown and HTML) from the project."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from keel.cli._common import JsonOpt, ProjectOpt, emit, open_project

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["register"]

OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out", "-o", help="Folder to write runbook.md and runbook.html into.", show_default=False
    ),
]


def register(app: typer.Typer) -> None:
    """Add ``keel runbook`` to the ``keel`` app."""
    app.command("runbook")(runbook)


def runbook(out: OutOpt = None, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Write the on-call runbook: every alert rule, what to run, how to roll back, whom to call."""
    import time

    from keel.errors import ProjectError
    from keel.ui.render import write_runbook

    with open_project(project) as opened:
        folder = out if out is not None else opened.root / "runbook"
        if folder.exists() and not folder.is_dir():
            raise ProjectError(f"{folder} is a file; pass a folder to --out")
        markdown, html, written = write_runbook(opened, folder, time.time())
    rules, events = len(written.entries), len(written.events)
    data = {"markdown": str(markdown), "html": str(html), "rules": rules, "events": events}

    def human(console: Console) -> None:
        console.print(
            f"wrote the runbook ({rules} alert rules, {events} events) to {markdown} and {html}"
        )

    emit(as_json, data, human)
