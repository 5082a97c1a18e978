"""Predictions served by a registered model over the in-process HTTP app, and their truth.

The model is registered through the training layer's import and deployed, so the server
loads it from the registry (as ``keel serve`` does) and logs its version with every row.
The truth is drawn from a known probability, so every number a test checks about the
served rows is computed here with scikit-learn, never read back from Keel.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from keel.cli.main import app
from keel.monitoring.log import PredictionLog
from keel.project import Project
from keel.serving import create_app
from tests.serving.helpers import FEATURES, auth, client, create_key

CONFIG = "name: churn\nserving:\n  rate_limit: 100000/second\n  timeout_ms: 5000\n"


@dataclass(frozen=True)
class Served:
    """What the client saw: ids, the probability returned, and each row's true class."""

    ids: list[str]
    probability: list[float | None]
    served: list[Any]
    truth: list[Any]


def frame(rows: int, seed: int, classes: tuple[Any, Any] = ("No", "Yes")) -> pd.DataFrame:
    """Three numeric features; the target is ``classes[1]`` with a logistic probability."""
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, rows),
            "spend": rng.normal(50, 10, rows).round(2),
            "visits": rng.integers(0, 30, rows),
        }
    )
    logit = (data["spend"] - 50) / 8 - (data["tenure"] - 36) / 30
    positive = rng.random(rows) < 1 / (1 + np.exp(-logit))
    data["churned"] = np.where(positive, classes[1], classes[0])
    return data


def register(project: Project, tmp: Path, model: Any, sample: pd.DataFrame) -> str:
    """Import ``model`` (fitted) with ``sample`` as its holdout and make it production."""
    from keel.training import deploy, import_model

    (tmp / "model.pkl").write_bytes(pickle.dumps(model))
    sample.to_csv(tmp / "sample.csv", index=False)
    version = import_model(project, tmp / "model.pkl", tmp / "sample.csv", "churned", None)
    return deploy(project, str(version.version), force=True, reason="test").label


async def serve(project: Project, rows: pd.DataFrame, batch: int = 200) -> Served:
    """POST every row to /v1/predict through the app (registry model); log flushed."""
    key = create_key(project)
    out = Served([], [], [], [])
    async with client(create_app(project)) as c:
        for start in range(0, len(rows), batch):
            chunk = rows.iloc[start : start + batch]
            body = {"instances": chunk[FEATURES].to_dict("records")}
            response = await c.post("/v1/predict", json=body, headers=auth(key))
            assert response.status_code == 200, response.text
            for answer in response.json()["predictions"]:
                out.ids.append(answer["prediction_id"])
                out.probability.append(answer.get("probability"))
                out.served.append(answer["prediction"])
            out.truth.extend(chunk["churned"])
    with PredictionLog.for_project(project) as log:
        log.flush()
    return out


def write_feedback(path: Path, ids: list[str], labels: list[Any]) -> Path:
    """A feedback CSV (prediction_id, label) as a team would export it."""
    pd.DataFrame({"prediction_id": ids, "label": labels}).to_csv(path, index=False)
    return path


def keel(*args: str) -> dict[str, Any]:
    """Run a keel command with --json in process and return its parsed output."""
    result = CliRunner().invoke(app, [*args, "--json"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.stdout
    return json.loads(result.stdout)  # type: ignore[no-any-return]
