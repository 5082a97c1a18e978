"""``keel config check``: validate keel.yaml and print the resolved config."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from keel.cli._common import JsonOpt, ProjectOpt, emit, open_project

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(help="Inspect and validate keel.yaml.", no_args_is_help=True)


@app.command("check")
def check(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Validate keel.yaml and print the resolved config, secrets masked."""
    opened = open_project(project)
    resolved = opened.loaded.resolved()
    data = {
        "path": str(opened.loaded.path),
        "valid": True,
        "warnings": list(opened.loaded.warnings),
        "config": resolved,
    }

    def human(out: Console) -> None:
        import yaml

        out.print(f"[green]✓[/] {opened.loaded.path} is valid")
        for warning in opened.loaded.warnings:
            out.print(f"[yellow]![/] {warning}")
        out.print(yaml.safe_dump(resolved, sort_keys=False).rstrip(), markup=False)

    emit(as_json, data, human)
