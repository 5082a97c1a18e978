"""Confidence intervals for slice metrics, checked against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from keel.training.bounds import hanley_mcneil, interval, wilson


def _scored(positives: int, negatives: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.array(["bad"] * positives + ["good"] * negatives)
    scores = np.concatenate([rng.normal(1, 1, positives), rng.normal(0, 1, negatives)])
    return y, 1 / (1 + np.exp(-scores))


def test_hanley_mcneil_width_matches_a_bootstrap() -> None:
    """The analytic AUC interval is about as wide as 2,000 bootstrap resamples say."""
    y, p = _scored(150, 300)
    auc = roc_auc_score(y == "bad", p)
    rng = np.random.default_rng(1)
    pos, neg = np.flatnonzero(y == "bad"), np.flatnonzero(y == "good")
    draws = []
    for _ in range(2000):
        rows = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        draws.append(roc_auc_score(y[rows] == "bad", p[rows]))
    low, high = hanley_mcneil(auc, 150, 300, 0.95)
    assert high - low == pytest.approx(2 * 1.96 * np.std(draws), rel=0.15)


def test_wilson_matches_the_textbook_formula() -> None:
    """Wilson's interval for 7 of 40 equals the closed form computed here."""
    z, n, share = 1.959963984540054, 40, 7 / 40
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    assert wilson(7, 40, 0.95) == pytest.approx((centre - half, centre + half), abs=1e-9)


def test_bootstrap_interval_is_seeded_and_brackets_the_value() -> None:
    """F1 (no analytic bound) gets a seeded bootstrap interval around its value."""
    y, p = _scored(30, 120)

    def f1(labels: np.ndarray, scores: np.ndarray) -> float:
        return float(f1_score(labels, np.where(scores >= 0.5, "bad", "good"), pos_label="bad"))

    value = f1(y, p)
    first = interval("f1", value, y, p, "bad", 0.95, f1)
    assert first == interval("f1", value, y, p, "bad", 0.95, f1)
    assert first is not None and first[0] < value < first[1]


def test_few_positives_give_a_wide_auc_interval() -> None:
    """Five positives leave an AUC interval far wider than 150 do."""
    y_few, p_few = _scored(5, 300)
    y_many, p_many = _scored(150, 300)
    few = interval(
        "roc_auc", roc_auc_score(y_few == "bad", p_few), y_few, p_few, "bad", 0.95, f1_score
    )
    many = interval(
        "roc_auc", roc_auc_score(y_many == "bad", p_many), y_many, p_many, "bad", 0.95, f1_score
    )
    assert few is not None and many is not None
    assert few[1] - few[0] > 2 * (many[1] - many[0])


@pytest.mark.parametrize("metric", ["f1", "brier", "log_loss", "mae", "rmse", "r2"])
def test_fast_resample_metrics_equal_scikit_learn(metric: str) -> None:
    """The NumPy metrics the bootstrap uses give scikit-learn's values."""
    from sklearn import metrics as skm

    from keel.training.bounds import _FAST

    y, p = _scored(40, 160)
    hits = (y == "bad").astype(float)
    expected = {
        "f1": skm.f1_score(hits, p >= 0.5),
        "brier": skm.brier_score_loss(hits, p),
        "log_loss": skm.log_loss(hits, p),
        "mae": skm.mean_absolute_error(hits, p),
        "rmse": np.sqrt(skm.mean_squared_error(hits, p)),
        "r2": skm.r2_score(hits, p),
    }[metric]
    assert _FAST[metric](hits, p) == pytest.approx(expected, abs=1e-9)
