"""A picklable classifier that takes KEEL_TEST_SLOW_S seconds per call (0 when unset).

Real-process tests register it, so the server in the child process can unpickle it.
"""

from __future__ import annotations

import os
import time
from typing import Any


class SlowModel:
    def __init__(self, model: Any) -> None:
        self.model = model
        self.classes_ = model.classes_
        self.feature_names_in_ = model.feature_names_in_

    def predict(self, X: Any) -> Any:
        return self.model.predict(X)

    def predict_proba(self, X: Any) -> Any:
        time.sleep(float(os.environ.get("KEEL_TEST_SLOW_S", "0")))
        return self.model.predict_proba(X)
