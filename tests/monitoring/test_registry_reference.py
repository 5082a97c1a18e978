"""The training layer's reference statistics, turned into a drift Reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keel.monitoring.drift import compare_frame
from keel.monitoring.registry_reference import from_statistics
from keel.training.reference import numeric_reference, reference_statistics

SCHEMA = [{"name": "x", "type": "float"}, {"name": "plan", "type": "category"}]


def _statistics(seed: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    holdout = pd.DataFrame(
        {"x": rng.normal(0, 1, 4_000), "plan": rng.choice(["a", "b", "c"], 4_000)}
    )
    holdout.loc[:39, "x"] = np.nan
    return reference_statistics(holdout, SCHEMA)


def test_training_statistics_become_layout_and_counts() -> None:
    """Decile edges become bins (with overflow buckets), counts and nulls carry over."""
    reference = from_statistics(_statistics(0))
    x = reference.sketch.columns["x"]
    assert reference.layout.columns["x"].size == 12 and x.nulls == 40
    assert x.counts[0] == 0 and x.counts[-1] == 0 and x.counts.sum() == 3_960
    assert set(reference.layout.columns["plan"].categories) == {"a", "b", "c"}


def test_drift_against_a_model_versions_statistics() -> None:
    """A shifted window drifts against the registry's statistics; a clean one does not."""
    reference = from_statistics(_statistics(1))
    rng = np.random.default_rng(2)
    shifted = pd.DataFrame({"x": rng.normal(0.6, 1, 1_000), "plan": rng.choice(["a", "d"], 1_000)})
    clean = pd.DataFrame({"x": rng.normal(0, 1, 1_000), "plan": rng.choice(["a", "b", "c"], 1_000)})
    assert sorted(compare_frame(reference, shifted).drifted) == ["plan", "x"]
    assert compare_frame(reference, clean).drifted == []


def _flags_and_rain(rows: int, seed: int, holiday: float, dry: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rain = np.where(rng.random(rows) < dry, 0.0, rng.gamma(1.5, 4.0, rows).round(1))
    return pd.DataFrame({"holiday": (rng.random(rows) < holiday).astype(float), "rain": rain})


FLAG_SCHEMA = [{"name": "holiday", "type": "float"}, {"name": "rain", "type": "float"}]


def test_a_model_reference_sees_a_flag_and_a_mostly_zero_column_move() -> None:
    """Training's statistics give a 0/1 flag a bucket per value and the zeros of a mostly
    dry rain column a bucket of their own (decile edges alone folded the flag into one
    bin: KS 0, p 1), so holidays 16% -> 50% and dry days 75% -> 55% are found at 500 rows,
    the flag by chi-square with scipy's statistic; an unshifted window is clean."""
    from scipy.stats import chi2_contingency

    holdout = _flags_and_rain(4_000, 5, holiday=0.16, dry=0.75)
    reference = from_statistics(reference_statistics(holdout, FLAG_SCHEMA))
    shifted = _flags_and_rain(500, 6, holiday=0.5, dry=0.55)
    result = compare_frame(reference, shifted)
    assert sorted(result.drifted) == ["holiday", "rain"]
    table = [holdout["holiday"].value_counts().sort_index(), shifted["holiday"].value_counts()]
    counts = np.array([list(t.sort_index()) for t in table])
    expected = chi2_contingency(counts, correction=False).statistic
    flag = result.column("holiday")
    assert flag.test == "chi2" and flag.statistic == pytest.approx(expected, rel=1e-6)
    assert compare_frame(reference, _flags_and_rain(500, 7, 0.16, 0.75)).drifted == []


def test_prediction_statistics_give_an_output_column() -> None:
    """The model's score statistics become the named output column, tested as an output."""
    scores = np.random.default_rng(3).beta(2, 5, 3_000)
    reference = from_statistics({}, numeric_reference(scores), "output.probability")
    window = {"output.probability": np.random.default_rng(4).beta(5, 2, 500)}
    result = compare_frame(reference, window).column("output.probability")
    assert result.role == "output" and result.decision == "drift"


def test_a_served_score_is_what_training_summarised() -> None:
    """The logged score is the positive class's probability or a regressor's value, as in
    the registry's reference; a fallback or a many-class answer has none."""
    from keel.serving.backend import Prediction

    assert Prediction(prediction=1, probability=0.8, confidence=0.8).score == 0.8
    assert Prediction(prediction=41.5).score == 41.5
    assert Prediction(prediction="b", confidence=0.6).score is None
    assert Prediction(prediction=0.0, probability=0.3, fallback="cache").score is None


@pytest.mark.anyio
async def test_the_model_reference_tests_drift_of_the_served_scores(
    project_dir: Path, tmp_path: Path
) -> None:
    """`monitoring.reference: model:production` compares the scores the server logged with
    the scores training recorded: customers like the training sample do not move them,
    customers who spend far more (so churn far more) do, and the column is an output."""
    from keel.monitoring.cycle import project_reference
    from keel.monitoring.log import PredictionLog
    from keel.monitoring.window import feature_view
    from keel.project import Project
    from keel.serving import create_app
    from tests.serving.helpers import (
        FEATURES,
        auth,
        churn_frame,
        client,
        create_key,
        register_model,
        write_config,
    )

    write_config(project_dir, "rate_limit: 10000/second\ntimeout_ms: 2000")
    with Project.open(project_dir) as project:
        register_model(project, tmp_path)
        key = create_key(project)
        clean = churn_frame(rows=150, seed=7)[FEATURES]
        spenders = clean.assign(spend=(clean["spend"] + 20).clip(upper=80))  # in range
        async with client(create_app(project)) as c:
            for frame in (clean, spenders):
                for row in frame.to_dict("records"):
                    body = {"instance": row}
                    response = await c.post("/v1/predict", json=body, headers=auth(key))
                    assert response.status_code == 200, response.text
        logged = feature_view(PredictionLog.for_project(project).read())
        reference = project_reference(project, "model:production")
    assert logged["score"].between(0, 1).all()
    verdicts = [compare_frame(reference, part) for part in (logged[:150], logged[150:])]
    scores = [next(c for c in v.columns if c.column == "score") for v in verdicts]
    assert all(score.role == "output" for score in scores)
    assert [score.decision == "drift" for score in scores] == [False, True]
