"""``keel status`` reads the store as every command does: one config path, one schema.

The store URL and its ``${VAR}`` references are resolved by the same code as
``Project.open``; the queries are built from the layers' SQLAlchemy tables by their
public read functions, never from SQL text of status's own.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from keel.errors import StoreUnavailable
from keel.project import Project
from keel.training import Registry, read_status
from keel.training.status import render_status
from tests.helpers import die_with_parent, registry_row
from tests.training.conftest import TRAINING

MakeProject = Callable[..., Project]
SRC = str(Path(__file__).resolve().parents[2] / "src")
# status and the read functions it composes, with the layer whose tables each may import
READERS = {
    "keel.training.status": "training",
    "keel.training.reads": "training",
    "keel.monitoring.reads": "monitoring",
    "keel.delivery.reads": "delivery",
    "keel.store.reads": None,
    "keel.ui.readers": None,
}
LAYERS = ("data", "delivery", "features", "monitoring", "serving", "store", "training")


def _keel(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keel", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        preexec_fn=die_with_parent,
    )


@pytest.mark.parametrize("form", [["--json"], []], ids=["json", "text"])
def test_missing_store_variable_is_the_config_sentence(tmp_path: Path, form: list[str]) -> None:
    """A ${VAR} in store: that is not set fails `keel status` with the sentence every
    command gives (here `keel config check`), not an empty password."""
    (tmp_path / "keel.yaml").write_text(
        "name: churn\nstore: postgresql://keel:${KEEL_TEST_UNSET_PASSWORD}@127.0.0.1/test\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "KEEL_TEST_UNSET_PASSWORD"}
    env |= {"PYTHONPATH": SRC}
    env.pop("KEEL_STORE_URL", None)
    status = _keel("status", *form, "--project", str(tmp_path), env=env)
    check = _keel("config", "check", "--project", str(tmp_path), env=env)
    assert (status.returncode, status.stdout) == (1, "")
    assert "KEEL_TEST_UNSET_PASSWORD is not set" in status.stderr
    assert status.stderr == check.stderr and status.stderr.count("\n") == 1


def test_status_help_is_the_full_command(tmp_path: Path) -> None:
    """`keel status --json --help` is not taken by the fast path: it prints the help."""
    env = {**os.environ, "PYTHONPATH": SRC}
    done = _keel("status", "--json", "--help", env=env)
    assert done.returncode == 0 and "--project" in done.stdout and "Usage" in done.stdout


def _strings(module: str) -> list[str]:
    """Every string literal of ``module`` except docstrings."""
    tree = ast.parse(inspect.getsource(importlib.import_module(module)))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if id(node) not in docstrings
    ]


def _store_tables() -> set[str]:
    from keel.store.tables import metadata

    for layer in LAYERS:
        importlib.import_module(f"keel.{layer}.tables")
    return set(metadata.tables)


@pytest.mark.parametrize("module", list(READERS))
def test_readers_hold_no_sql_text(module: str) -> None:
    """Status and its read functions name no table and write no SQL: each query is built
    from the layers' tables, so a schema change cannot leave a copy behind."""
    tables = _store_tables()
    sql = re.compile(r"\b(SELECT|FROM|WHERE|JOIN|ORDER BY|GROUP BY)\b")
    found = [text for text in _strings(module) if sql.search(text) or text in tables]
    found += [t for t in tables if any(t in text for text in _strings(module))]
    assert found == []


@pytest.mark.parametrize("module", [m for m, layer in READERS.items() if layer is not None])
def test_readers_import_only_their_own_layers_tables(module: str) -> None:
    """A read module imports its own layer's tables module and no other layer's; status
    reaches monitoring and delivery through their public read functions."""
    tree = ast.parse(inspect.getsource(importlib.import_module(module)))
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module is not None
    }
    own = f"keel.{READERS[module]}.tables"
    assert {name for name in imported if name.endswith(".tables")} == {own}


def test_status_composes_the_layers_public_read_functions() -> None:
    """Status imports monitoring's and delivery's read functions from the packages, which
    list them in __all__."""
    import keel.delivery
    import keel.monitoring
    import keel.training
    from keel.training import status

    assert status.open_alert_counts is keel.monitoring.open_alert_counts
    assert status.last_rollout is keel.delivery.last_rollout
    assert "open_alert_counts" in keel.monitoring.__all__
    assert "last_rollout" in keel.delivery.__all__
    assert {"read_versions", "count_versions", "status_of"} <= set(keel.training.__all__)


def test_old_store_without_monitoring_or_delivery_tables(make_project: MakeProject) -> None:
    """A store made before monitoring and delivery existed reports no alerts table and no
    rollout, instead of failing."""
    from keel.delivery.tables import rollouts
    from keel.monitoring.tables import alerts

    project = make_project(TRAINING)
    Registry(project.store).register(registry_row(), {}, "a")
    rollouts.drop(project.store.engine)
    alerts.drop(project.store.engine)
    status = read_status(project.root)
    assert (status["alerts"], status["rollout"], status["versions"]) == (None, None, 1)
    assert "alerts: monitoring is not set up" in render_status(status)


def test_a_file_that_is_not_a_store_is_one_sentence(tmp_path: Path) -> None:
    """A store file that is not a SQLite database is StoreUnavailable, not a traceback."""
    (tmp_path / "keel.yaml").write_text("name: churn\n")
    (tmp_path / ".keel").mkdir()
    (tmp_path / ".keel" / "keel.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreUnavailable, match="cannot read the metadata store"):
        read_status(tmp_path)


def test_status_agrees_with_the_tables(make_project: MakeProject, store_url: str) -> None:
    """Count, production, previous production, shadow, alerts and the rollout equal what
    pandas reads from the tables on each backend; the dashboard's reader says the same."""
    from keel.delivery.tables import rollouts
    from keel.monitoring.tables import alerts
    from keel.ui.readers import status as dashboard_status

    project = make_project(TRAINING, store_url)
    registry = Registry(project.store)
    for auc in (0.7, 0.8, 0.9, 0.75):
        registry.register(registry_row(metrics={"roc_auc": auc}), {}, "a")
    registry.transition(1, "production", "bob", "first")
    registry.transition(3, "production", "carol", "better")
    registry.transition(4, "shadow", "dave", "try it")
    with project.store.begin() as connection:
        connection.execute(rollouts.insert().values(
            version=4, kind="shadow", share=0.0, step_index=0, step_started_at=5.0,
            state="running", updated_at=5.0,
        ))  # fmt: skip
        for alert_id, state, severity in [("a", "open", "warning"), ("b", "resolved", "info")]:
            connection.execute(alerts.insert().values(
                id=alert_id, rule="r", subject=alert_id, severity=severity, status=state,
                summary="s", details="{}", opened_at=0.0, updated_at=0.0,
            ))  # fmt: skip
    with project.store.engine.connect() as connection:
        versions = pd.read_sql(sa.text("SELECT * FROM keel_model_versions"), connection)
        events = pd.read_sql(sa.text("SELECT * FROM keel_model_events ORDER BY id"), connection)
        open_alerts = pd.read_sql(sa.text("SELECT * FROM keel_alerts"), connection)
    promoted = events[events.to_status == "production"].version.tolist()
    active = open_alerts[open_alerts.status.isin(["open", "acknowledged"])]
    status = read_status(project.root)
    assert status["versions"] == len(versions)
    assert (
        status["production"]["version"] == versions[versions.status == "production"].version.max()
    )
    assert status["previous_production"]["version"] == promoted[-2]
    assert status["comparison"] == {"roc_auc": pytest.approx(0.9 - 0.7)}
    assert [r["version"] for r in status["shadow"]] == versions[
        versions.status == "shadow"
    ].version.tolist()
    assert status["alerts"] == active.groupby("severity").size().to_dict()
    assert (status["rollout"]["version"], status["rollout"]["reason"]) == (4, "try it")
    assert dashboard_status(project) == status
