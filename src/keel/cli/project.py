"""``keel init`` and ``keel quickstart``: start a project."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from keel.cli._common import JsonOpt, emit, progress

if TYPE_CHECKING:
    from rich.console import Console

Rows = Annotated[int, typer.Option(help="Number of example customers to generate.")]
Seed = Annotated[int, typer.Option(help="Seed for the generated data.")]


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("quickstart")(quickstart)


def init(
    folder: Annotated[Path, typer.Argument(help="Folder for the new project.")] = Path("."),
    rows: Rows = 2000,
    seed: Seed = 42,
    as_json: JsonOpt = False,
) -> None:
    """Create a working example project: keel.yaml, features.py and generated data."""
    from keel.scaffold import init_project

    with progress(f"creating a project in {folder}", quiet=as_json):
        result = init_project(folder, rows=rows, seed=seed)
    emit(as_json, result.to_dict(), lambda out: _created(out, result.to_dict()))


def quickstart(
    folder: Annotated[Path, typer.Argument(help="Folder for the new project.")] = Path(
        "keel-quickstart"
    ),
    rows: Rows = 2000,
    seed: Seed = 42,
    as_json: JsonOpt = False,
) -> None:
    """Create the example project in a new folder and run the story end to end."""
    from keel.config import mask_url
    from keel.project import Project
    from keel.scaffold import init_project

    steps: list[dict[str, object]] = []
    with progress("creating the example project", quiet=as_json) as update:
        created = init_project(folder, rows=rows, seed=seed)
        steps.append({"step": "init", **created.to_dict()})
        update("opening the metadata store")
        with Project.open(created.root) as project:
            project.store.ping()
            steps.append({"step": "store", "store": mask_url(project.store_url)})
    emit(as_json, {"root": str(created.root), "steps": steps}, lambda out: _story(out, steps))


def _created(out: Console, result: dict[str, object]) -> None:
    out.print(
        f"[green]✓[/] created a Keel project in {result['root']} "
        f"({result['customers']} customers, {result['events']} events, {result['labels']} labels)"
    )
    out.print("  next: cd into it and run `keel config check`")


def _story(out: Console, steps: list[dict[str, object]]) -> None:
    _created(out, steps[0])
    out.print(f"[green]✓[/] metadata store ready at {steps[1]['store']}")
