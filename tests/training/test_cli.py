"""The training commands end to end, as a user runs them: ``python -m keel ...``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from keel.cli.main import app
from tests.training.conftest import GATE, TRAINING, write_project

SRC = str(Path(__file__).resolve().parents[2] / "src")


def keel(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "KEEL_ACTOR": "tester"}
    command = [sys.executable, "-m", "keel", *args, "--project", str(root)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def in_process(root: Path, *args: str) -> Result:
    """Run a command through the real app in this process (no interpreter start-up)."""
    return CliRunner().invoke(app, [*args, "--project", str(root)], env={"KEEL_ACTOR": "tester"})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with version 1 trained, gated and deployed, and version 2 trained."""
    root = write_project(tmp_path_factory.mktemp("cli"), TRAINING + GATE)
    for args in (("train",), ("deploy", "1", "--reason", "first"), ("train", "--json")):
        done = in_process(root, *args)
        assert done.exit_code == 0, done.output
    return root


@pytest.mark.parametrize(
    "command",
    [
        ["train"],
        ["gate"],
        ["deploy"],
        ["status"],
        ["registry", "list"],
        ["registry", "show"],
        ["registry", "diff"],
        ["registry", "import"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    """Each command answers --help and documents --json and --project."""
    done = CliRunner().invoke(app, [*command, "--help"])
    assert done.exit_code == 0
    assert "--json" in done.stdout and "--project" in done.stdout


def test_status_json(trained: Path) -> None:
    """`keel status --json` names the production version and who deployed it."""
    data = json.loads(keel(trained, "status", "--json").stdout)
    assert data["production"]["version"] == 1
    assert data["production"]["deployed"]["actor"] == "tester"
    assert data["latest"]["version"] == 2


def test_status_for_people(trained: Path) -> None:
    """The human status screen states the production version and its data."""
    out = keel(trained, "status").stdout
    assert "production: version 1" in out and "600 rows" in out


def test_registry_list_json(trained: Path) -> None:
    """`keel registry list --json` lists versions newest first."""
    data = json.loads(in_process(trained, "registry", "list", "--json").stdout)
    assert [row["version"] for row in data] == [2, 1]


def test_registry_show_has_history_and_gate(trained: Path) -> None:
    """`keel registry show 1 --json` includes status history and the gate decision."""
    data = json.loads(in_process(trained, "registry", "show", "1", "--json").stdout)
    assert [e["to_status"] for e in data["history"]] == ["candidate", "production"]
    assert data["gate"]["passed"] is True


def test_registry_diff_of_identical_runs(trained: Path) -> None:
    """Two runs of the same config on the same data differ in nothing but time."""
    data = json.loads(in_process(trained, "registry", "diff", "1", "2", "--json").stdout)
    assert data["config"] == {} and data["data"] == {}
    assert all(delta["delta"] == 0 for delta in data["metrics"].values())


def test_gate_exit_code(trained: Path) -> None:
    """`keel gate 2` exits 0 when the version passes."""
    done = in_process(trained, "gate", "2", "--json")
    assert done.exit_code == 0, done.output


def test_user_error_is_one_line(trained: Path) -> None:
    """Deploying a missing version prints one line on stderr and exits 1."""
    done = keel(trained, "deploy", "99")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "does not exist" in done.stderr


def test_train_with_a_config_file(trained: Path, tmp_path: Path) -> None:
    """`keel train --config FILE` trains from that file's training: section."""
    config = tmp_path / "train.yaml"
    config.write_text(TRAINING.replace("max_iter: 15", "max_iter: 5"))
    done = in_process(trained, "train", "--config", str(config), "--json")
    assert json.loads(done.stdout)["version"]["version"] == 3


def test_failed_gate_exits_2(tmp_path: Path) -> None:
    """`keel train` exits 2 when the new version fails its gate, and says which check."""
    root = write_project(tmp_path, TRAINING + GATE.replace('">= 0.6"', '">= 0.99"'))
    done = in_process(root, "train")
    assert done.exit_code == 2
    assert "✗ threshold:roc_auc" in done.stdout
