"""Regression models answer with a conformal interval from their held-out residuals."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from keel.project import Project
from keel.serving import conformal_halfwidth, create_app
from tests.serving.helpers import FEATURES, GOOD, auth, churn_frame, client, create_key


def test_the_halfwidth_is_the_conformal_quantile_of_absolute_residuals() -> None:
    """With 9 residuals 1..9 and 80% coverage, the ceil(10 x 0.8) = 8th smallest is used."""
    assert conformal_halfwidth([float(r) for r in range(9, 0, -1)], 0.8) == 8.0


def test_no_residuals_give_no_interval() -> None:
    """Without finite residuals there is no interval to give."""
    assert conformal_halfwidth([float("nan")], 0.9) is None


@pytest.mark.anyio
async def test_a_registered_regressor_answers_with_an_interval(
    project: Project, tmp_path: Path
) -> None:
    """A production LinearRegression's answer carries [value - q, value + q]."""
    from sklearn.linear_model import LinearRegression

    from keel.training import deploy, import_model

    frame = churn_frame(seed=3).assign(target=lambda f: 2 * f["spend"] + f["visits"])
    model = LinearRegression().fit(frame[FEATURES], frame["target"])
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    frame[[*FEATURES, "target"]].to_csv(tmp_path / "sample.csv", index=False)
    version = import_model(project, tmp_path / "model.pkl", tmp_path / "sample.csv", "target", None)
    deploy(project, str(version.version), force=True, reason="test")
    key = create_key(project)
    async with client(create_app(project)) as c:
        response = await c.post("/v1/predict", json={"instance": GOOD}, headers=auth(key))
    answer = response.json()["predictions"][0]
    low, high = answer["interval"]
    assert low <= answer["prediction"] <= high and "label" not in answer
