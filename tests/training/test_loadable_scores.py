"""The gate's loadable check: a reloaded model's held-out scores against training's."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

from keel.training.evaluate import _same_scores, scores_digest, scores_summary


def _recorded(scores: np.ndarray) -> dict[str, object]:
    return {"scores_sha256": scores_digest(scores), "scores_summary": scores_summary(scores)}


def test_scores_equal_but_for_the_last_bits_are_the_same() -> None:
    """Scores summed in another order (a few ulps apart) pass; one score off by 1e-6,
    or the scores of another row order, do not; a record without a summary (an older
    version) asks for equality bit for bit, as before."""
    rng = np.random.default_rng(0)
    scores = rng.random((5000, 3))
    jittered = scores * (1 + rng.choice([-1, 0, 1], size=scores.shape) * np.finfo(float).eps)
    assert scores_digest(jittered) != scores_digest(scores)
    assert _same_scores(jittered, _recorded(scores))
    changed = scores.copy()
    changed[1234, 1] += 1e-6
    assert 1234 * 3 + 1 not in scores_summary(scores)["positions"]  # caught by the sums
    assert not _same_scores(changed, _recorded(scores))
    assert not _same_scores(scores[::-1], _recorded(scores))
    assert not _same_scores(jittered, {"scores_sha256": scores_digest(scores)})
    assert _same_scores(scores, {"scores_sha256": scores_digest(scores)})


def test_a_forest_predicting_on_threads_matches_its_own_record() -> None:
    """A forest with n_jobs=2 predicts the same rows twice; whether or not the two calls
    agree bit for bit, the second matches the first's record."""
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(3000, 8)))
    y = (X[0] + rng.normal(size=3000) > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=60, n_jobs=2, random_state=0).fit(X, y)
    first = forest.predict_proba(X)
    second = forest.predict_proba(X)
    np.testing.assert_allclose(second, first, rtol=1e-12)
    assert _same_scores(second, _recorded(first))
