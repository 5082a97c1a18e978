"""The gate's latency measurement: one stall of the machine does not fail a fast model,
a model slow on every call still fails. Calls go through ``predict_scores`` as the gate's
do; the estimator is a stand-in whose ``predict`` takes the wall time the test sets (real
sleeps), since what is tested is the measuring rule, not a model."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from keel.training.evaluate import measure_latency_p99_ms


class _Timed:
    """A regressor whose calls take ``slow_ms``, except call number ``stall_at`` (counted
    from 0), which takes ``stall_ms``: a machine that stalls once."""

    def __init__(self, slow_ms: float = 0.0, stall_at: int = -1, stall_ms: float = 0.0) -> None:
        self.slow_ms, self.stall_at, self.stall_ms, self.calls = slow_ms, stall_at, stall_ms, 0

    def predict(self, X: pd.DataFrame) -> np.ndarray[Any, Any]:
        wait = self.stall_ms if self.calls == self.stall_at else self.slow_ms
        self.calls += 1
        if wait:
            time.sleep(wait / 1000)
        return np.zeros(len(X))


def _bundle(model: _Timed) -> dict[str, Any]:
    return {"task": "regression", "model": model, "schema": [{"name": "x", "type": "float"}]}


FRAME = pd.DataFrame({"x": np.arange(50, dtype="float64")})


def test_one_stall_above_the_limit_is_measured_again_and_does_not_count() -> None:
    """A 30 ms model makes the round's 20 timed calls (its budget is spent): their p99 is
    mostly the slowest call, here a 400 ms stall. Measured again, the model's own 30 ms."""
    model = _Timed(slow_ms=30, stall_at=10, stall_ms=400)
    found = measure_latency_p99_ms(_bundle(model), FRAME, limit=150)
    assert 30 <= found < 150, found
    assert model.calls == 2 * 23, model.calls  # two rounds: 3 warm-up and 20 timed calls


def test_without_a_limit_the_stall_is_what_was_measured() -> None:
    model = _Timed(slow_ms=30, stall_at=10, stall_ms=400)
    found = measure_latency_p99_ms(_bundle(model), FRAME)
    assert found >= 300 and model.calls == 23, (found, model.calls)


def test_a_model_slow_on_every_call_stays_above_the_limit() -> None:
    model = _Timed(slow_ms=20)
    found = measure_latency_p99_ms(_bundle(model), FRAME, limit=10)
    assert found >= 20, found
    assert model.calls >= 2 * 23  # both rounds ran, each at least 20 timed calls
