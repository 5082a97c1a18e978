"""A picklable classifier that sleeps a set time per call: a partition takes long enough
for a test to act while the job runs, whatever environment the worker has."""

from __future__ import annotations

import time
from typing import Any


class SleepyModel:
    def __init__(self, model: Any, seconds: float) -> None:
        self.model = model
        self.seconds = seconds
        self.classes_ = model.classes_
        self.feature_names_in_ = model.feature_names_in_

    def predict(self, X: Any) -> Any:
        return self.model.predict(X)

    def predict_proba(self, X: Any) -> Any:
        time.sleep(self.seconds)
        return self.model.predict_proba(X)
