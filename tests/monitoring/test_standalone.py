"""The few lines a team adds around a model Keel did not train, as the package doc shows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pandas as pd

from keel.monitoring import DriftMonitor, PredictionLog, Reference, feature_view

from .synthetic import population


def test_wrap_an_existing_predict_then_check_drift(tmp_path: Path) -> None:
    """Decorate predict, serve shifted traffic, and the monitor names the moved columns."""
    log = PredictionLog(tmp_path / "predictions")

    @log.watch(model_version="churn-v3")
    def predict(rows: pd.DataFrame) -> np.ndarray:
        return 1 / (1 + np.exp(-(rows["n0"].to_numpy() - 50) / 10))

    training = population(5_000, seed=1)
    for seed in range(3):
        predict(population(300, seed=20 + seed, shift=True))
    log.flush()

    reference = Reference.from_frame(training.assign(output=predict.__wrapped__(training)))
    report = DriftMonitor(reference).update(feature_view(log.read())).report
    assert {"n0", "n1", "n2", "c0", "c1", "output"} <= set(report.drifted)
    assert report.column("output").role == "output"
    assert set(log.read()["model_version"]) == {"churn-v3"}
    log.close()


def test_async_predict_functions_are_logged_too(tmp_path: Path) -> None:
    """An async predict(batch) is awaited, timed and logged one record per row."""
    with PredictionLog(tmp_path) as log:

        @log.watch(route="shadow")
        async def predict(rows: list[dict[str, float]]) -> list[float]:
            return [row["x"] * 2 for row in rows]

        assert asyncio.run(predict([{"x": 1.0}, {"x": 2.0}])) == [2.0, 4.0]
        log.flush()
        frame = log.read()
    assert list(frame["output"]) == [2.0, 4.0]
    assert set(frame["route"]) == {"shadow"} and (frame["latency_ms"] >= 0).all()


def test_a_single_mapping_input_is_one_record(tmp_path: Path) -> None:
    """predict(features_dict) logs one record with the dict as inputs."""
    with PredictionLog(tmp_path) as log:
        predict = log.watch()(lambda features: {"label": "churn", "p": 0.9})
        predict({"age": 40, "plan": "basic"})
        log.flush()
        frame = log.read()
    assert len(frame) == 1 and frame["input.plan"].iloc[0] == "basic"
    assert frame["output.p"].iloc[0] == 0.9
