"""Classifiers that only take labels 0..k-1 (XGBoost), trained and served in the labels
the table has.

``XGBClassifier`` refuses ``"Yes"``/``"No"`` (and any labels that are not 0..k-1): the
model is fitted on the labels' codes inside ``EncodedLabels``, whose ``classes_`` are the
labels themselves, so the registry, the server, the gate and monitoring see the same
classes as for any scikit-learn classifier.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.preprocessing import LabelEncoder

__all__ = ["EncodedLabels", "needs_encoded_labels"]

_CODED_ONLY = ("xgboost.",)  # modules whose classifiers take only labels 0..k-1


def needs_encoded_labels(estimator: Any) -> bool:
    """Whether ``estimator`` is a classifier that refuses labels other than 0..k-1."""
    from sklearn.base import is_classifier

    module = type(estimator).__module__ + "."
    return is_classifier(estimator) and module.startswith(_CODED_ONLY)


class EncodedLabels(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Fit ``estimator`` on label codes; answer in the original labels."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, X: Any, y: Any, **fit_params: Any) -> EncodedLabels:
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        self.estimator_ = clone(self.estimator).fit(X, encoder.transform(y), **fit_params)
        self.n_features_in_ = getattr(self.estimator_, "n_features_in_", None)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        proba: np.ndarray = self.estimator_.predict_proba(X)
        return proba

    def predict(self, X: Any) -> np.ndarray:
        labels: np.ndarray = self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        return labels

    @property
    def feature_importances_(self) -> np.ndarray:
        importances: np.ndarray = self.estimator_.feature_importances_
        return importances
