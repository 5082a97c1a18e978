"""`keel init` and `keel quickstart`: a working project, or a clear refusal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from keel.errors import ProjectError
from keel.project import Project
from keel.scaffold import init_project

from .helpers import as_unprivileged, keel


def test_init_creates_a_valid_project(tmp_path: Path) -> None:
    """The scaffold's keel.yaml validates and every file it names exists."""
    result = init_project(tmp_path / "churn", rows=50)
    assert {"keel.yaml", "features.py", "data/customers.csv", "data/labels.csv"} <= set(
        result.files
    )
    with Project.open(tmp_path / "churn") as project:
        assert project.config.name == "churn"
        assert project.loaded.warnings == ()


def test_init_refuses_an_existing_project(tmp_path: Path) -> None:
    """Running init twice does not overwrite the first project."""
    init_project(tmp_path, rows=20)
    (tmp_path / "keel.yaml").write_text("name: mine\n")
    with pytest.raises(ProjectError, match="already a Keel project"):
        init_project(tmp_path, rows=20)
    assert (tmp_path / "keel.yaml").read_text() == "name: mine\n"


def test_two_inits_racing_make_one_project(tmp_path: Path) -> None:
    """Two processes initialising one folder at once: one wins, one refuses clearly."""
    target = tmp_path / "race"
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "keel", "init", str(target), "--rows", "300"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [child.communicate(timeout=120) for child in children]
    codes = sorted(child.returncode for child in children)
    assert codes == [0, 1], outputs
    loser = next(err for (_, err), c in zip(outputs, children, strict=True) if c.returncode)
    assert "already a Keel project" in loser
    assert keel("config", "check", "--project", str(target)).returncode == 0
    assert not (target / ".keel-init.lock").exists()


def test_init_into_a_read_only_folder_is_refused() -> None:
    """A folder that cannot be written to fails before any work, with one clear line."""
    folder = Path(tempfile.mkdtemp(prefix="keel-ro-"))
    try:
        folder.chmod(0o555)
        result = subprocess.run(
            as_unprivileged([sys.executable, "-m", "keel", "init", str(folder)]),
            capture_output=True,
            text=True,
            timeout=60,
            env=os.environ,
        )
        assert result.returncode == 1
        assert result.stderr.startswith("error: cannot write to"), result.stderr
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)
        subprocess.run(["rm", "-rf", str(folder)], check=True)


def test_quickstart_runs_the_story(tmp_path: Path) -> None:
    """quickstart tells the whole story with a real server process and real HTTP."""
    result = keel("quickstart", "--json", "--rows", "400", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    _check_story(json.loads(result.stdout)["steps"])


@pytest.mark.postgres
def test_quickstart_runs_the_story_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    """The same story with the metadata store on PostgreSQL: server, worker and CLI
    processes all share it through KEEL_STORE_URL."""
    env = {"KEEL_STORE_URL": postgres_url}
    result = keel("quickstart", "--json", "--rows", "400", cwd=tmp_path, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    _check_story(json.loads(result.stdout)["steps"])
    assert not (tmp_path / "keel-quickstart" / ".keel" / "keel.db").exists()


def _check_story(story: list[dict[str, object]]) -> None:
    steps = {str(step["step"]): step for step in story}
    assert list(steps) == [
        "init", "ingest", "features", "train", "serve", "drift", "retrain", "shadow", "canary",
        "bad canary", "stop",
    ]  # fmt: skip
    assert steps["ingest"]["quarantined"] == 1
    assert steps["features"]["skew_mismatches"] == 0
    assert steps["train"]["gate"] == "passed"
    assert steps["serve"]["failed"] == 0
    # only what the update changed: charges, plans, and spend over charges (spend_ratio)
    drifted = set(steps["drift"]["drifted_columns"])  # type: ignore[call-overload]
    assert "monthly_charges" in drifted and drifted <= {"monthly_charges", "plan", "spend_ratio"}
    assert "feature_drift" in steps["retrain"]["alerts"]  # type: ignore[operator]
    assert steps["retrain"]["retrained"] is True and steps["retrain"]["staged"] == "shadow"
    assert steps["shadow"]["action"] == "canary"
    assert steps["canary"]["action"] == "promote", steps["canary"]
    bad = steps["bad canary"]
    assert bad["action"] == "rollback" and 0 < bad["share"] < 0.02  # type: ignore[operator]
    assert steps["stop"]["exit_code"] == 0


def test_example_generate_json(tmp_path: Path) -> None:
    """example generate --json reports what it wrote."""
    result = keel("example", "generate", "--out", str(tmp_path), "--rows", "50", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["customers"] == 50
    assert (tmp_path / "data" / "customers.csv").exists()


def test_example_generate_rejects_unknown_kinds(tmp_path: Path) -> None:
    """An unknown drift kind is a one-line error listing the valid ones."""
    result = keel("example", "generate", "--out", str(tmp_path), "--drift", "shfit")
    assert result.returncode == 1
    assert "numeric_shift" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("today", "start", "end"),
    [
        ("2026-11-26", "2026-05-26", "2026-11-26"),
        ("2026-03-01", "2025-09-01", "2026-03-01"),
        ("2026-06-30", "2025-12-30", "2026-06-30"),
        ("2026-08-31", "2026-02-28", "2026-08-28"),  # no 31 February: three days early
    ],
)
def test_example_data_ends_today(today: str, start: str, end: str) -> None:
    """The scaffold's six months of data end today, so the 30 days that served features
    look back over hold data, as they did for every training row."""
    from keel.examples._world import timeline
    from keel.scaffold import EXAMPLE_MONTHS, example_start

    first = example_start(date.fromisoformat(today))
    assert first == date.fromisoformat(start)
    last = datetime.fromtimestamp(timeline(first, EXAMPLE_MONTHS).starts[-1], UTC).date()
    assert last == date.fromisoformat(end)


def test_clean_example_traffic_does_not_drift(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The customers the quickstart scores, with features looked up the day the example
    data ends (as its server does), look like the model's reference: no column drifts.

    Scoring customers who churned (no activity since) or looking up weeks after the data
    ends both flag the activity features here."""
    from keel import quickstart
    from keel.data import ingest
    from keel.examples import generate
    from keel.features import FeatureStore
    from keel.monitoring.drift import compare_frame
    from keel.monitoring.registry_reference import from_model
    from keel.monitoring.wiring import drift_settings
    from keel.scaffold import EXAMPLE_MONTHS, example_start
    from keel.training import train

    monkeypatch.delenv("KEEL_STORE_URL", raising=False)
    today = date(2026, 11, 26)
    generate(tmp_path, rows=400, seed=42, start=example_start(today), months=EXAMPLE_MONTHS)
    for name in ("keel.yaml", "features.py"):
        (tmp_path / name).write_text(_template(name))
    now = datetime(2026, 11, 26, 12, 0)
    with Project.open(tmp_path) as project:
        assert all(run.ok for run in ingest(project))
        store = FeatureStore.open(project)
        try:
            store.materialize(now)
            version = train(project).version.version
            customers = quickstart._current_customers(project)[: quickstart.TRAFFIC]
            served = store.lookup([{"customer_id": c} for c in customers], at=now)
        finally:
            store.close()
        reference = from_model(project, str(version))
        monitoring = project.config.monitoring
    assert monitoring is not None
    assert len(customers) == quickstart.TRAFFIC
    assert not any(found.missing or found.stale for found in served)
    frame = pd.DataFrame([found.values for found in served])
    report = compare_frame(reference, frame, drift_settings(monitoring.drift))
    assert {"logins_30d", "spend_30d", "tickets_30d"} <= {c.column for c in report.columns}
    assert report.drifted == [], report.drifted


def _template(name: str) -> str:
    from importlib import resources

    return (resources.files("keel.examples") / "template" / name).read_text(encoding="utf-8")


def test_quickstart_traffic_to_a_server_that_is_gone_is_one_clear_error() -> None:
    """A server that stops answering ends the story with one sentence, not a traceback."""
    from keel.errors import KeelError
    from keel.quickstart import Traffic

    from .helpers import free_port

    gone = Traffic(f"http://127.0.0.1:{free_port()}", "key")
    with gone, pytest.raises(KeelError, match="the model server did not answer: ConnectError"):
        gone.send(["c1", "c2"])
