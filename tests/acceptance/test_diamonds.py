"""ggplot2's diamonds: a regression on price with three text categories (cut, color, clarity).

A fixed-seed sample of 8,000 of the 53,940 diamonds keeps the story under a minute: 6,000
make the team's table, 2,000 later diamonds are priced over HTTP and their true prices fed
back, and `keel performance` must agree with scikit-learn on the served predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, r2_score

from keel.project import Project

from .story import api_key, edit_config, feedback, init, predict, rdata, run, server

pytestmark = pytest.mark.slow

SEED, SAMPLE, TABLE_ROWS = 11, 8_000, 6_000


@dataclass(frozen=True)
class Story:
    """The table, the later diamonds, and what each command answered."""

    table: pd.DataFrame
    later: pd.DataFrame
    made: dict[str, Any]
    checks: dict[str, Any]
    trained: dict[str, Any]
    served: pd.DataFrame
    performance: dict[str, Any]


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    """init --from, ingest, train, deploy latest, serve, feedback and performance, once."""
    tmp = tmp_path_factory.mktemp("diamonds")
    sample = rdata("ggplot2", "diamonds").sample(n=SAMPLE, random_state=SEED)
    sample = sample.reset_index(drop=True)
    sample.insert(0, "diamond_id", [f"g_{i:05d}" for i in range(len(sample))])
    table, later = sample.iloc[:TABLE_ROWS], sample.iloc[TABLE_ROWS:]
    table.to_csv(tmp / "diamonds.csv", index=False)
    root = tmp / "gems"
    made = init(root, tmp / "diamonds.csv", "--target", "price", "--key", "diamond_id")
    edit_config(root, {"serving": {"timeout_ms": 5000, "rate_limit": None}})
    with Project.open(root) as project:
        columns = project.config.sources["diamonds"].checks.columns
        checks = {name: check.model_dump() for name, check in columns.items()}
    run("ingest", root=root)
    trained = run("train", root=root)
    run("deploy", "latest", root=root)
    key = api_key(root)
    with server(root) as http:
        served = predict(http, key, later.drop(columns=["price"]))
    feedback(root, served, later["price"])
    performance = run("performance", root=root)
    return Story(table, later, made, checks, trained, served, performance)


def test_price_makes_a_regression(story: Story) -> None:
    """A whole-number price with thousands of values is a regression, not classes."""
    assert story.table["price"].nunique() > 1_000
    assert story.made["task"] == "regression"


@pytest.mark.parametrize("column", ["cut", "color", "clarity"])
def test_allowed_values_are_the_tables_categories(story: Story, column: str) -> None:
    """Each text category's allowed list is exactly the values pandas finds in the table."""
    assert story.checks[column]["allowed"] == sorted(story.table[column].unique())


def test_trained_on_every_row_and_gated(story: Story) -> None:
    """Training reads the whole published table (no label missing) and passes r2 > 0."""
    assert story.trained["data"]["rows"] == len(story.table)
    assert story.trained["data"]["missing_labels"] == int(story.table["price"].isna().sum())
    assert story.trained["gate"]["passed"] is True


def test_served_prices_explain_the_later_diamonds(story: Story) -> None:
    """The served prices of 2,000 later diamonds reach r2 > 0.9 (sklearn), with no fallback."""
    assert story.served["fallback"].isna().all()
    assert r2_score(story.later["price"], story.served["prediction"].astype(float)) > 0.9


def test_realised_performance_matches_sklearn(story: Story) -> None:
    """`keel performance` on the fed-back prices agrees with sklearn's r2, MAE and RMSE."""
    truth, guess = story.later["price"], story.served["prediction"].astype(float)
    metrics = story.performance["metrics"]
    assert story.performance["labelled"] == len(story.later)
    assert metrics["r2"] == pytest.approx(r2_score(truth, guess), abs=0.01)
    assert metrics["mae"] == pytest.approx(mean_absolute_error(truth, guess), rel=0.01)
    rmse = float(np.sqrt(np.mean((truth.to_numpy() - guess.to_numpy()) ** 2)))
    assert metrics["rmse"] == pytest.approx(rmse, rel=0.01)
