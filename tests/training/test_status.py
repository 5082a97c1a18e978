"""``keel status``: the on-call answer, read with the standard library only."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from keel.project import Project
from keel.training import Registry, read_status
from keel.training.status import render_status
from tests.helpers import registry_row
from tests.training.conftest import TRAINING

MakeProject = Callable[..., Project]
SRC = str(Path(__file__).resolve().parents[2] / "src")


def _row() -> dict[str, object]:
    return registry_row(data_start="2024-01-01", data_end="2024-02-01")


def test_status_of_an_empty_project(make_project: MakeProject) -> None:
    """A project with no store yet reports no production model, without creating one."""
    project = make_project(TRAINING)
    status = read_status(project.root)
    assert status["production"] is None and status["versions"] == 0
    assert not (project.root / ".keel").exists()


def test_status_compares_with_previous_production(
    make_project: MakeProject, store_url: str
) -> None:
    """Status shows production, who deployed it and why, and deltas to the previous one."""
    project = make_project(TRAINING, store_url)
    registry = Registry(project.store)
    registry.register(_row(), {}, "a")
    registry.register({**_row(), "metrics": {"roc_auc": 0.85}}, {}, "a")
    registry.transition(1, "production", "bob", "first")
    registry.transition(2, "production", "carol", "better")
    registry.transition(1, "shadow", "dave", "compare again")
    status = read_status(project.root)
    assert status["production"]["version"] == 2
    assert status["production"]["deployed"]["actor"] == "carol"
    assert status["previous_production"]["version"] == 1
    assert status["comparison"] == {"roc_auc": 0.05}
    assert [row["version"] for row in status["shadow"]] == [1]


def test_status_imports_no_heavy_libraries(make_project: MakeProject) -> None:
    """`keel status --json` loads neither pandas, NumPy, scikit-learn, Alembic nor the config
    schema; SQLAlchemy Core is what it reads the layers' tables with."""
    project = make_project(TRAINING)
    Registry(project.store).register(_row(), {}, "a")
    code = (
        "import sys\nfrom keel.cli.main import app\n"
        "try:\n    app(['status', '--json', '--project', sys.argv[1]])\n"
        "except SystemExit:\n    pass\n"
        "heavy = {'pandas', 'sklearn', 'numpy', 'keel.schema', 'alembic'} & set(sys.modules)\n"
        "print('HEAVY', sorted(heavy))\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run(
        [sys.executable, "-c", code, str(project.root)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert '"version": 1' in done.stdout
    assert "HEAVY []" in done.stdout


def test_fast_path_matches_the_command(make_project: MakeProject) -> None:
    """`keel status --json`, answered before the CLI framework is built, prints the Typer
    command's output byte for byte."""
    project = make_project(TRAINING)
    Registry(project.store).register(_row(), {}, "a")
    env = {**os.environ, "PYTHONPATH": SRC}
    full = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom keel.cli.main import app\napp(sys.argv[1:])",
            "status",
            "--json",
            "--project",
            str(project.root),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    fast = subprocess.run(
        [sys.executable, "-m", "keel", "status", "--json", "--project", str(project.root)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert '"version": 1' in fast.stdout
    assert fast.stdout == full.stdout


def test_render_status_names_the_production_model() -> None:
    """The plain-text screen names production, its data and its metrics."""
    data = {
        "project": "churn",
        "versions": 3,
        "production": {
            **_row(),
            "version": 2,
            "created_at": 0.0,
            "deployed": {"at": 0.0, "actor": "bob", "reason": "r"},
        },
        "previous_production": None,
        "comparison": None,
        "shadow": [],
        "canary": [],
        "latest": None,
        "alerts": None,
    }
    text = "\n".join(render_status(data))
    assert "production: version 2" in text and "10 rows" in text and "roc_auc 0.8000" in text


def test_malformed_keel_yaml_is_one_sentence(tmp_path: Path) -> None:
    """A keel.yaml that does not parse gives a ConfigError, not a YAML traceback."""
    from keel.errors import ConfigError

    (tmp_path / "keel.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"keel\.yaml:1:\d+: malformed YAML"):
        read_status(tmp_path)


def test_status_counts_open_alerts_by_severity(make_project: MakeProject, store_url: str) -> None:
    """Open and acknowledged alerts are counted; resolved ones are not."""
    from keel.monitoring.tables import alerts

    project = make_project(TRAINING, store_url)
    rows = [
        ("a1", "open", "critical"),
        ("a2", "acknowledged", "warning"),
        ("a3", "resolved", "info"),
    ]
    with project.store.begin() as connection:
        for alert_id, state, severity in rows:
            connection.execute(
                alerts.insert().values(
                    id=alert_id, rule="r", subject=alert_id, severity=severity, status=state,
                    summary="s", details="{}", opened_at=0.0, updated_at=0.0,
                )
            )  # fmt: skip
    status = read_status(project.root)
    assert status["alerts"] == {"critical": 1, "warning": 1}
    assert "alerts: 2 open (1 critical, 1 warning)" in render_status(status)
