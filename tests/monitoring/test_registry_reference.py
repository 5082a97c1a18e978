"""The training layer's reference statistics, turned into a drift Reference."""

from __future__ import annotations

import numpy as np
import pandas as pd

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


def test_prediction_statistics_give_an_output_column() -> None:
    """The model's score statistics become the named output column, tested as an output."""
    scores = np.random.default_rng(3).beta(2, 5, 3_000)
    reference = from_statistics({}, numeric_reference(scores), "output.probability")
    window = {"output.probability": np.random.default_rng(4).beta(5, 2, 500)}
    result = compare_frame(reference, window).column("output.probability")
    assert result.role == "output" and result.decision == "drift"
