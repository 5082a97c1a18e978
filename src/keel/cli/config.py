"""``keel config``: validate keel.yaml, and print its reference or its JSON Schema."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer

from keel.cli._common import JsonOpt, ProjectOpt, emit, open_project

if TYPE_CHECKING:
    from rich.console import Console

    from keel.errors import KeelError

app = typer.Typer(help="Inspect and validate keel.yaml.", no_args_is_help=True)


@app.command("check")
def check(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Validate keel.yaml and print the resolved config, secrets masked.

    A file that does not validate gets one line per problem, as FILE:LINE:COLUMN: KEY:
    what is wrong and what the key expects. With --json the answer is one object: ok,
    file, and on failure every problem's line, column, key path, message and hint (exit 1).
    """
    from keel.errors import ConfigError, ProjectError

    try:
        opened = open_project(project)
    except (ConfigError, ProjectError) as error:
        if not as_json:
            raise
        emit(True, _refused(error), lambda out: None)
        raise typer.Exit(1) from None
    loaded = opened.loaded
    resolved = loaded.resolved()
    data = {
        "ok": True,
        "valid": True,
        "file": str(loaded.path),
        "path": str(loaded.path),
        "checked": {
            "sections": [loc[0] for loc in loaded.marks.keys if len(loc) == 1],
            "expressions": sum(1 for _ in loaded.config.expressions()),
            "files": sum(1 for _ in loaded.config.referenced_files()),
        },
        "warnings": list(loaded.warnings),
        "config": resolved,
    }

    def human(out: Console) -> None:
        import yaml

        out.print(f"[green]✓[/] {loaded.path} is valid")
        for warning in loaded.warnings:
            out.print(f"[yellow]![/] {warning}")
        out.print(yaml.safe_dump(resolved, sort_keys=False).rstrip(), markup=False)

    emit(as_json, data, human)


def _refused(error: KeelError) -> dict[str, Any]:
    """The --json answer for a keel.yaml that cannot be used: each problem as data; an
    error without a place (no keel.yaml at all) is one problem without one."""
    from keel.errors import ConfigError, ConfigProblem

    problems = error.problems if isinstance(error, ConfigError) else ()
    if not problems:
        problems = (ConfigProblem("", None, None, None, str(error)),)
    return {
        "ok": False,
        "valid": False,
        "file": problems[0].file or None,
        "problems": [
            {
                "line": p.line,
                "column": p.column,
                "path": p.path,
                "message": p.message,
                **({"hint": p.hint} if p.hint else {}),
            }
            for p in problems
        ],
    }


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
