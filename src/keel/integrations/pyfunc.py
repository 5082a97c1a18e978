"""The MLflow ``python_function`` model Keel exports: a Keel artifact answering as the
server does. Importing this module imports MLflow."""

from __future__ import annotations

import pickle
from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel

from keel.integrations.mlflow import answers

__all__ = ["KeelPyfunc"]


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
