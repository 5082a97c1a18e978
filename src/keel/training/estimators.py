"""Build the model a config names and fit it: no wrappers, seeds everywhere.

An estimator is any class with the scikit-learn contract, named by import path and built
with its params. A training function ``train(X, y, params) -> estimator`` is named as
``module:function`` (the project folder is importable). Every source of randomness we can
reach is seeded: the estimator's ``random_state`` (when it has one and the config does not
set it), Python's ``random`` and NumPy's global generator.
"""

from __future__ import annotations

import importlib
import random
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.errors import EstimatorError, MissingExtraError, TrainingDataError

if TYPE_CHECKING:
    import pandas as pd

    from keel.schema import ModelSpec

__all__ = ["build_estimator", "fit_baseline", "fit_model", "import_object", "refuse_one_class"]

_EXTRAS = {"xgboost": "xgboost", "lightgbm": "lightgbm"}


def import_object(path: str, root: Path | None = None) -> Any:
    """The object at ``package.module.Name`` or ``package.module:name``."""
    module_name, _, attribute = path.replace(":", ".").rpartition(".")
    if not module_name:
        raise EstimatorError(f"'{path}' is not an import path; write e.g. sklearn.linear_model.X")
    if root is not None and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        top = module_name.split(".")[0]
        if top in _EXTRAS:
            raise MissingExtraError(top, _EXTRAS[top]) from None
        raise EstimatorError(
            f"cannot import '{module_name}' for training.model '{path}'; check the spelling "
            "or install the package that provides it"
        ) from None
    if not hasattr(module, attribute):
        raise EstimatorError(f"module '{module_name}' has no '{attribute}' (training.model)")
    return getattr(module, attribute)


def build_estimator(path: str, params: dict[str, Any], seed: int, root: Path | None = None) -> Any:
    """An unfitted estimator from its class path and params, seeded if it takes a seed."""
    cls = import_object(path, root)
    try:
        estimator = cls(**params)
    except TypeError as error:
        raise EstimatorError(f"cannot build {path} with params {params}: {error}") from None
    if not hasattr(estimator, "fit") or not hasattr(estimator, "get_params"):
        raise EstimatorError(f"{path} is not a scikit-learn compatible estimator (no fit)")
    if "random_state" in estimator.get_params() and "random_state" not in params:
        estimator.set_params(random_state=seed)
    return _adapted(estimator, params)


def _adapted(estimator: Any, params: dict[str, Any]) -> Any:
    """XGBoost as Keel feeds every estimator: text columns arrive as pandas categoricals
    (``enable_categorical``) and labels as the table has them (``EncodedLabels``)."""
    from keel.training.labels import EncodedLabels, needs_encoded_labels

    if type(estimator).__module__.startswith("xgboost") and "enable_categorical" not in params:
        estimator.set_params(enable_categorical=True)
    return EncodedLabels(estimator) if needs_encoded_labels(estimator) else estimator


def fit_model(spec: ModelSpec, X: pd.DataFrame, y: pd.Series, seed: int, root: Path) -> Any:
    """Fit the configured estimator (or call the training function) and return the model."""
    random.seed(seed)
    np.random.seed(seed)  # for code that draws from NumPy's legacy global generator
    if spec.function is not None:
        function = import_object(spec.function, root)
        return _call(spec.function, lambda: function(X, y, dict(spec.params)))
    assert spec.estimator is not None  # the schema guarantees one of the two
    estimator = build_estimator(spec.estimator, dict(spec.params), seed, root)
    refuse_one_class(estimator, y)
    return _call(spec.estimator, lambda: estimator.fit(X, y))


def fit_baseline(model: Any, X: pd.DataFrame, y: pd.Series) -> Any:
    """The trivial model the gate compares with, fitted on the same training rows.

    A classifier's is ``DummyClassifier(strategy="prior")``: it predicts the most frequent
    class with the class priors as probabilities. A regressor's predicts the mean.
    """
    from sklearn.dummy import DummyClassifier, DummyRegressor

    if hasattr(model, "predict_proba") and getattr(model, "classes_", None) is not None:
        return DummyClassifier(strategy="prior").fit(X, y)
    return DummyRegressor(strategy="mean").fit(X, y)


def refuse_one_class(estimator: Any, y: pd.Series) -> None:
    """A classifier and a target with one class: one sentence instead of the library's."""
    from sklearn.base import is_classifier

    present = y.dropna().unique()
    if is_classifier(estimator) and len(present) < 2:
        raise TrainingDataError(
            f"the target '{y.name}' has one class ({', '.join(map(repr, present))}) in the "
            "training rows, and a classifier needs two or more; check training.target and "
            "the labels"
        )


def _call(name: str, fit: Any) -> Any:
    try:
        model = fit()
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as error:
        raise EstimatorError(
            f"{name} failed while fitting: {type(error).__name__}: {error}"
        ) from error
    if not hasattr(model, "predict"):
        raise EstimatorError(f"{name} returned {type(model).__name__}, which has no predict()")
    return model
