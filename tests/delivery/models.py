"""Picklable test models for the delivery tests: one that fails on demand, one constant.

The failure is switched by the ``KEEL_TEST_FAULT`` environment variable at predict time
(``raise``, ``hang``, ``constant``, ``raise20`` for one input in five, or ``badshadow``
which raises on one input in five and hangs on another), so importing and warming the
model up succeed and the fault shows only under traffic.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np


class Faulty:
    """Wraps a fitted classifier; misbehaves as ``KEEL_TEST_FAULT`` says."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.classes_ = model.classes_
        self.feature_names_in_ = model.feature_names_in_

    def predict_proba(self, X: Any) -> Any:
        fault = os.environ.get("KEEL_TEST_FAULT", "")
        if fault == "raise":
            raise ValueError("the shadow broke")
        if fault == "hang":
            time.sleep(3)
        if fault == "constant":
            return np.tile([1.0, 0.0], (len(X), 1))
        if fault == "badshadow":
            visits = np.asarray(X["visits"]) % 5
            if (visits == 0).any():
                raise ValueError("the shadow broke")
            if (visits == 1).any():
                time.sleep(3)
        if fault == "raise20" and (np.asarray(X["visits"]) % 5 == 0).any():
            raise ValueError("fails on one input in five")
        return self.model.predict_proba(X)

    def predict(self, X: Any) -> Any:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
