"""``keel store check``: reach the metadata store and bring its schema up to date."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from keel.cli._common import JsonOpt, ProjectOpt, emit, open_project

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(help="The metadata and artifact stores.", no_args_is_help=True)


@app.command("check")
def check(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Connect to the metadata store, apply pending migrations and report where things live."""
    from keel.config import mask_url

    opened = open_project(project)
    store = opened.store
    store.ping()
    data = {
        "store": mask_url(opened.store_url),
        "dialect": store.dialect,
        "artifacts": mask_url(opened.artifacts_location),
        "reachable": True,
    }
    opened.close()

    def human(out: Console) -> None:
        out.print(f"[green]✓[/] metadata store {data['store']} is reachable and up to date")
        out.print(f"  artifacts: {data['artifacts']}")

    emit(as_json, data, human)
