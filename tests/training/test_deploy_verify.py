"""A deploy reads the artifact back, loads it and predicts before anything is recorded."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from keel.project import Project
from keel.training.verify import typical_row
from tests.training.conftest import GATE, TRAINING, write_project
from tests.training.test_cli import in_process, keel


def _tamper(root: Path, version: int) -> None:
    """Flip bytes in the stored artifact of ``version`` (as an attacker or a bad disk would)."""
    with Project.open(root) as project:
        from keel.training import Registry

        digest = Registry(project.store).get(version).artifact
        path = Path(project.artifacts_location) / "sha256" / digest[:2] / digest
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _production(root: Path) -> int | None:
    done = keel(root, "status", "--json")
    assert done.returncode == 0, done.stderr
    production = json.loads(done.stdout)["production"]
    return None if production is None else int(production["version"])


@pytest.fixture
def two_versions(tmp_path: Path) -> Path:
    """Version 1 trained and in production, version 2 trained and gated."""
    root = write_project(tmp_path, TRAINING + GATE)
    for args in (("train",), ("deploy", "1", "--reason", "first"), ("train",)):
        done = in_process(root, *args)
        assert done.exit_code == 0, done.output
    return root


@pytest.mark.parametrize(
    "args",
    [
        ("deploy", "2"),
        ("deploy", "latest"),
        ("deploy", "2", "--canary"),
        ("deploy", "2", "--shadow"),
    ],
)
def test_a_tampered_version_is_refused_and_nothing_changes(
    two_versions: Path, args: tuple[str, ...]
) -> None:
    """Version 2's bytes changed after registration: every deploy form refuses it in one
    sentence naming version 2, and production, canary and shadow stay as they were."""
    _tamper(two_versions, 2)
    done = keel(two_versions, *args)
    deployments = keel(two_versions, "deployments", "--json")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "version 2 cannot be" in done.stderr
    assert "Traceback" not in done.stderr
    assert _production(two_versions) == 1
    assert all(event["version"] == 1 for event in json.loads(deployments.stdout))


def test_rollback_to_a_tampered_version_is_refused(two_versions: Path) -> None:
    """With 2 in production and 1's artifact changed, `keel rollback` refuses; 2 stays."""
    done = in_process(two_versions, "deploy", "2")
    assert done.exit_code == 0, done.output
    _tamper(two_versions, 1)
    done = keel(two_versions, "rollback", "--reason", "incident")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "version 1 cannot be rolled back to" in done.stderr
    assert _production(two_versions) == 2


def test_an_intact_version_still_deploys(two_versions: Path) -> None:
    """The check does not stand in the way of a good version: version 2 becomes production."""
    done = keel(two_versions, "deploy", "2", "--json")
    assert done.returncode == 0, done.stderr
    assert _production(two_versions) == 2


def test_a_row_without_a_holdout_is_shaped_by_the_schema() -> None:
    """Numeric columns take their reference mean, categories their most common value."""
    frame = pd.DataFrame({"spend": [1.0, 2.0, 6.0], "region": ["n", "s", "s"]})
    reference = {
        "spend": {"mean": float(frame["spend"].mean())},
        "region": {"counts": frame["region"].value_counts().to_dict()},
    }
    schema = [
        {"name": "spend", "type": "float"},
        {"name": "region", "type": "category", "categories": ["n", "s"]},
        {"name": "age", "type": "integer"},
    ]
    row = typical_row(reference, schema)
    assert row == {"spend": 3.0, "region": frame["region"].mode()[0], "age": 0.0}


def test_an_intact_artifact_that_is_not_a_model_is_refused(two_versions: Path) -> None:
    """Version 2's artifact verifies but holds no Keel bundle: the deploy is refused in
    one sentence saying it does not load, and version 1 stays in production."""
    import pickle

    import sqlalchemy as sa

    from keel.errors import DeployRefused
    from keel.training import deploy
    from keel.training.tables import model_versions

    with Project.open(two_versions) as project:
        digest = project.artifacts.put_bytes(pickle.dumps({"not": "a model"}))
        with project.store.begin() as conn:
            conn.execute(
                sa.update(model_versions)
                .where(model_versions.c.version == 2)
                .values(artifact=digest)
            )
        with pytest.raises(
            DeployRefused, match="version 2 cannot be deployed: its artifact does not load"
        ):
            deploy(project, "2")
    assert _production(two_versions) == 1
