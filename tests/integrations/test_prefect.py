"""keel.integrations.prefect: Keel's steps as Prefect tasks, run by the real library.

Flows run against Prefect's temporary local API (``prefect_test_harness``: a server on
loopback with its own SQLite file; no network). Prefect is its own extra and in dev: these
tests skip where it is not installed, except under CI=true, where they must run; the one
that needs it absent hides it from a child process.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from keel.project import Project
from tests.helpers import keel, without_module
from tests.training.conftest import churn_frame

REPO = Path(__file__).resolve().parents[2]
HAS_PREFECT = importlib.util.find_spec("prefect") is not None
REQUIRED = os.environ.get("CI", "").lower() == "true"  # dev installs it: CI must run these
needs_prefect = pytest.mark.skipif(
    not HAS_PREFECT and not REQUIRED,
    reason="prefect is not installed (pip install 'keel-ml[prefect]')",
)
CONFIG = """\
name: churn
sources:
  customers:
    kind: csv
    path: data/customers/*.csv
    key: customer_id
    checks:
      columns:
        spend: {{type: float, range: [0, null]}}
        churned: {{type: int, not_null: true}}
      extra_columns: ignore
training:
  data: customers
  target: churned
  exclude: [customer_id]
  model:
    estimator: sklearn.ensemble.HistGradientBoostingClassifier
    params: {{max_iter: 15}}
  split: {{by: time, column: ts, test_size: 0.25}}
  seed: 7
gate:
  thresholds: {{roc_auc: "{threshold}"}}
"""


@pytest.fixture(scope="module")
def harness() -> Iterator[None]:
    """Prefect's temporary API for the module's flow runs."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


def _project(root: Path, threshold: str) -> tuple[Path, pd.DataFrame]:
    """A project with one CSV source that trains on it, gated at ``threshold`` roc_auc."""
    (root / "data" / "customers").mkdir(parents=True)
    frame = churn_frame(400, seed=5)
    frame.to_csv(root / "data" / "customers" / "a.csv", index=False)
    (root / "keel.yaml").write_text(CONFIG.format(threshold=threshold))
    return root, frame


def _statuses(root: Path) -> dict[int, str]:
    from keel.training import Registry

    with Project.open(root) as project:
        return {v.version: v.status for v in Registry(project.store).versions(limit=100)}


@needs_prefect
def test_the_pipeline_flow_ingests_trains_gates_and_deploys(harness: None, tmp_path: Path) -> None:
    """A real flow run: each step's result is its task's return value, and the gated
    version is production in the registry afterwards."""
    from keel.integrations.prefect import keel_pipeline

    root, frame = _project(tmp_path, ">= 0.6")
    state = keel_pipeline(str(root), deploy_as="production", return_state=True)
    result: dict[str, Any] = state.result()
    assert state.is_completed()
    [run] = result["ingest"]
    assert run["status"] == "published" and run["rows"] == len(frame)
    assert result["train"]["gate"]["passed"] is True
    version = result["train"]["version"]
    assert result["deploy"]["status"] == "production"
    assert _statuses(root) == {version: "production"}


@needs_prefect
def test_a_failing_gate_fails_the_flow_with_keel_s_sentence(harness: None, tmp_path: Path) -> None:
    """A gate the candidate cannot pass fails the flow run with the failed check named, and
    nothing is deployed: the version stays a candidate."""
    from keel.integrations.prefect import keel_pipeline

    root, _ = _project(tmp_path, ">= 0.999")
    state = keel_pipeline(str(root), return_state=True)
    assert state.is_failed()
    message = state.message or ""
    assert re.search(
        r"version 1 failed its gate \(threshold:roc_auc: 0\.\d+ >= 0\.999\)", message
    ), message
    assert "nothing was deployed" in message
    assert _statuses(root) == {1: "candidate"}


@needs_prefect
@pytest.mark.slow
def test_the_readme_example_runs_as_shown(harness: None, tmp_path: Path) -> None:
    """The README's Prefect example, run as written in a folder where `keel init
    churn-project` ran: the first model reaches production."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n### Prefect\n", 1)[1].split("\n### ", 1)[0]
    [code] = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert keel("init", "churn-project", cwd=tmp_path).returncode == 0
    namespace: dict[str, Any] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        exec(compile(code, "README.md", "exec"), namespace)
    assert _statuses(tmp_path / "churn-project") == {1: "production"}
    assert namespace["result"]["deploy"]["version"] == 1


@needs_prefect
def test_the_monitoring_flow_returns_the_cycle(harness: None, tmp_path: Path) -> None:
    """keel_monitoring over a log of 300 predictions: the flow's result is the cycle's
    (its drift window holding those 300 rows, its alerts) and the rollout step's."""
    from keel.integrations.prefect import keel_monitoring
    from tests.cli.test_worker import _monitored_project

    result = keel_monitoring(str(_monitored_project(tmp_path)))
    assert result["monitoring"]["drift"]["rows"] == 300
    assert set(result["monitoring"]["alerts"]) == {"feature_drift", "prediction_drift"}
    assert "delivery" in result


def test_without_prefect_a_flow_call_names_the_extra(tmp_path: Path) -> None:
    """Where prefect does not import (a folder ahead on the path stands in for an
    environment without it), the module still imports, and calling a flow is one sentence
    saying what to install."""
    probe = (
        "from keel.errors import MissingExtraError\n"
        "from keel.integrations.prefect import keel_pipeline\n"
        "try:\n    keel_pipeline('anywhere')\n"
        "except MissingExtraError as error:\n    print(error)\n"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([without_module("prefect", tmp_path), src])}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'keel-ml[prefect]'" in done.stdout
