"""What the deployment files say, read for the tests: documents, keel commands, ${VAR}s."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from keel.cli.main import app

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
KEEL_YAML = DEPLOY / "keel.yaml"

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of a file, empty ones left out."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def variables(node: Any) -> set[str]:
    """The names of the ``${VAR}`` references in loaded YAML's values (comments are not
    read), compose's ``${VAR:-default}`` and ``${VAR:?error}`` included."""
    if isinstance(node, dict):
        return set().union(*map(variables, node.values()))
    if isinstance(node, list):
        return set().union(*map(variables, node))
    return set(_VAR.findall(node)) if isinstance(node, str) else set()


def keel_help(args: list[str]) -> str:
    """The help of the keel command ``args`` names, with its options as given.

    ``--help`` is handled before option values are checked, but after every option name
    is parsed: an unknown command or flag exits 2, so exit 0 proves both exist.
    """
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, f"keel {' '.join(args)}: {result.output}"
    return result.output
