"""`keel deploy latest`: the newest version that passed its gate, or one sentence."""

from __future__ import annotations

import json
from pathlib import Path

from tests.training.conftest import GATE, TRAINING, write_project
from tests.training.test_cli import in_process, keel


def test_latest_skips_a_newer_version_that_failed_its_gate(tmp_path: Path) -> None:
    """Version 1 passes, version 2 fails its gate: `deploy latest` deploys version 1."""
    root = write_project(tmp_path, TRAINING + GATE)
    done = in_process(root, "train")
    assert done.exit_code == 0, done.output
    config = root / "keel.yaml"
    config.write_text(config.read_text().replace('">= 0.6"', '">= 0.99"'))
    assert in_process(root, "train").exit_code == 2
    done = keel(root, "deploy", "latest", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == 1


def test_latest_with_no_passing_version_is_one_sentence(tmp_path: Path) -> None:
    """With only a version that failed its gate, `deploy latest` says so in one line."""
    root = write_project(tmp_path, TRAINING + GATE.replace('">= 0.6"', '">= 0.99"'))
    assert in_process(root, "train").exit_code == 2
    done = keel(root, "deploy", "latest")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "passed its gate" in done.stderr


def test_forced_latest_is_the_newest_version(tmp_path: Path) -> None:
    """With --force, `latest` is the newest version whatever its gate said."""
    root = write_project(tmp_path, TRAINING + GATE)
    done = in_process(root, "train")
    assert done.exit_code == 0, done.output
    config = root / "keel.yaml"
    config.write_text(config.read_text().replace('">= 0.6"', '">= 0.99"'))
    assert in_process(root, "train").exit_code == 2
    done = keel(root, "deploy", "latest", "--force", "--reason", "try it", "--json")
    assert json.loads(done.stdout)["version"] == 2
