"""The MLflow ``python_function`` model Keel exports: a Keel artifact answering as the
server does. Importing this module imports MLflow."""

from __future__ import annotations

import pickle
from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel

__all__ = ["KeelPyfunc", "answers"]


class KeelPyfunc(PythonModel):
    """Answers ``prediction`` (the label or value) and, for a binary classifier,
    ``probability`` of the positive class, for each row of the input frame."""

    def load_context(self, context: Any) -> None:
        with open(context.artifacts["bundle"], "rb") as handle:
            self.bundle = pickle.load(handle)  # Keel's own artifact, verified at export

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return answers(self.bundle, model_input)


def answers(bundle: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    """Keel's answer fields for each row of ``frame``."""
    import numpy as np
    import pandas as pd

    from keel.training.artifact import positive_index, predict_proba, predict_scores

    if bundle["task"] != "classification":
        return pd.DataFrame({"prediction": predict_scores(bundle, frame)}, index=frame.index)
    proba = predict_proba(bundle, frame)
    classes = np.asarray(bundle["model"].classes_, dtype=object)
    out = pd.DataFrame({"prediction": classes[proba.argmax(axis=1)]}, index=frame.index)
    if proba.shape[1] == 2:
        out["probability"] = proba[:, positive_index(bundle)]
    return out
