"""The CLI as users meet it: help everywhere, JSON for scripts, one line on failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from keel.cli.main import app

from ..helpers import keel


def _command_paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    if hasattr(command, "commands"):  # a group
        for name, sub in command.commands.items():
            paths.extend(_command_paths(sub, (*prefix, name)))
    return paths


COMMANDS = _command_paths(typer.main.get_command(app))


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "keel")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    """`keel ... --help` works for every command and group."""
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def _leaves() -> list[tuple[str, ...]]:
    root = typer.main.get_command(app)
    leaves = []
    for path in COMMANDS:
        command: Any = root
        for name in path:
            command = command.commands[name]
        if not hasattr(command, "commands"):
            leaves.append(path)
    return leaves


@pytest.mark.parametrize("path", _leaves(), ids=" ".join)
def test_every_command_takes_json(path: tuple[str, ...]) -> None:
    """Every command offers --json for scripts."""
    result = CliRunner().invoke(app, [*path, "--help"])
    assert "--json" in result.output


def test_version() -> None:
    """--version prints the package version."""
    result = keel("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("keel ")


def test_user_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    """A KeelError becomes one sentence on stderr and exit code 1."""
    result = keel("config", "check", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: no keel.yaml in")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_usage_error_exits_2(tmp_path: Path) -> None:
    """An unknown option is a usage error, not a crash."""
    result = keel("config", "check", "--bogus", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_config_check_json(project_dir: Path) -> None:
    """config check --json prints the resolved config for scripts."""
    result = keel("config", "check", "--json", "--project", str(project_dir))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["valid"] is True
    assert report["config"]["name"] == "test-project"


def test_config_check_reports_the_line(project_dir: Path) -> None:
    """An invalid keel.yaml fails with its line and a suggestion."""
    (project_dir / "keel.yaml").write_text("name: x\nsevring: {}\n")
    result = keel("config", "check", "--project", str(project_dir))
    assert result.returncode == 1
    assert "keel.yaml:2:1: sevring: unknown key; did you mean 'serving'?" in result.stderr


def test_store_check_on_unreachable_database(project_dir: Path) -> None:
    """store check against a dead PostgreSQL URL fails with one clear line."""
    result = keel(
        "store",
        "check",
        "--project",
        str(project_dir),
        env={"KEEL_STORE_URL": "postgresql://keel:pw@127.0.0.1:9/keel"},
    )
    assert result.returncode == 1
    assert "cannot reach the metadata store" in result.stderr
    assert "pw@" not in result.stderr


def test_store_check_json(project_dir: Path) -> None:
    """store check --json reports the backend and that it is reachable."""
    result = keel(
        "store", "check", "--json", "--project", str(project_dir), env={"KEEL_STORE_URL": ""}
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["dialect"] == "sqlite"


def _readme_commands() -> list[list[str]]:
    """Every `keel ...` line in the README's shell blocks, as arguments."""
    import re
    import shlex

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    lines = [line.split(" #")[0].strip() for block in blocks for line in block.splitlines()]
    commands = []
    for line in lines:
        for part in line.split("&&"):
            words = shlex.split(part)
            if words and words[0] == "keel":
                commands.append(words[1:])
    return commands


@pytest.mark.parametrize("args", _readme_commands(), ids=" ".join)
def test_every_command_in_the_readme_parses(args: list[str]) -> None:
    """The README's commands name real commands with real options and arguments."""
    command: Any = typer.main.get_command(app)
    words = list(args)
    while words and hasattr(command, "commands") and words[0] in command.commands:
        command = command.commands[words.pop(0)]
    assert not hasattr(command, "commands"), f"`keel {' '.join(args)}` names a group"
    command.make_context("keel", words)  # raises on an unknown option or missing argument
