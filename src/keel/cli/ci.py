"""``keel ci init``: a CI/CD pipeline that gates model changes before they ship."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from keel.cli._common import JsonOpt, ProjectOpt, emit

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(help="CI/CD for model changes.", no_args_is_help=True)


@app.command("init")
def init(
    provider: Annotated[str, typer.Argument(help="github or gitlab.")],
    repository: Annotated[
        Path | None,
        typer.Option(help="The repository's root (default: the project folder)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace a pipeline file that exists.")] = False,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a pipeline: on a change, check, validate, train and gate a candidate (the gate
    report is an artifact); on a merge to main, deploy it as a shadow.

    keel.yaml is read as text: its ${VAR} secrets need not be set where this runs."""
    import yaml

    from keel.cicd import PROVIDERS, project_folder, render, workflow_path
    from keel.errors import ConfigError
    from keel.project import find_root

    if provider not in PROVIDERS:
        raise ConfigError(
            f"'{provider}' is not a CI provider Keel writes for; use github or gitlab"
        )
    root = (
        find_root(project or Path.cwd()) if project is None or project.is_dir() else project.parent
    )
    config_text = (root / "keel.yaml").read_text()
    sources = list((yaml.safe_load(config_text) or {}).get("sources") or {})
    repository = repository or root
    try:
        folder = project_folder(root, repository)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    path = repository / workflow_path(provider)
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(provider, config_text, sources, folder))
    data = {"provider": provider, "path": str(path), "sources": sources}

    def human(out: Console) -> None:
        out.print(f"[green]✓[/] wrote {path}")
        out.print("  set the secrets its header names in your CI provider, then commit it")

    emit(as_json, data, human)
