"""``keel config``: validate keel.yaml, and print its reference or its JSON Schema."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from keel.cli._common import JsonOpt, ProjectOpt, emit, open_project

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(help="Inspect and validate keel.yaml.", no_args_is_help=True)


@app.command("check")
def check(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Validate keel.yaml and print the resolved config, secrets masked.

    A file that does not validate gets one line per problem, as FILE:LINE:COLUMN: KEY:
    what is wrong and what the key expects.
    """
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


@app.command("reference")
def reference(as_json: JsonOpt = False) -> None:
    """Print the keel.yaml reference (Markdown): every key's type, default, meaning, example.

    docs/keel-yaml.md is this output: keel config reference > docs/keel-yaml.md
    """
    from dataclasses import asdict

    from keel import schemadoc

    if as_json:
        keys = [
            {**asdict(entry), "path": entry.path}
            for section in schemadoc.entries()
            for entry in section.entries
        ]
        emit(True, {"keys": keys}, lambda out: None)
    else:
        sys.stdout.write(schemadoc.reference())


@app.command("schema")
def schema(as_json: JsonOpt = False) -> None:
    """Print keel.yaml's JSON Schema, for editors: keel config schema > keel.schema.json

    Then start keel.yaml with: # yaml-language-server: $schema=keel.schema.json
    (--json changes nothing: the schema is JSON.)
    """
    from keel import schemadoc

    emit(True, schemadoc.json_schema(), lambda out: None)
