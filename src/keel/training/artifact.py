"""The model artifact: a plain dict pickled with a fixed protocol, stored by its sha256.

The bundle holds the fitted estimator untouched, the input schema it was trained on, the
task, the classes and the positive class (see ``keel.training.classes``). Serialisation
is deterministic (same model → same bytes), so the same config and data give the same
digest. Loading goes through the artifact store,
which refuses bytes that do not match their digest before anything is unpickled.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.errors import ModelLoadError
from keel.training.classes import ModelClasses, choose_classes, classes_from_bundle
from keel.training.inputs import prepare

if TYPE_CHECKING:
    import pandas as pd

    from keel.project import Project
    from keel.store.artifacts import ArtifactStore

__all__ = [
    "FORMAT",
    "PROTOCOL",
    "dump_bundle",
    "load_bundle",
    "make_bundle",
    "model_classes",
    "positive_index",
    "predict_proba",
    "predict_scores",
]

FORMAT = "keel-model/1"
PROTOCOL = 5
_RUNTIME_ONLY = {"_BinMapper": ("n_threads",)}
_MODEL_PACKAGES = {"sklearn", "xgboost", "lightgbm", "keel"}


def make_bundle(
    model: Any,
    schema: list[dict[str, Any]],
    target: str,
    labels: Sequence[Any] | Mapping[Any, int] | None = None,
    positive_class: Any = None,
    baseline: Any = None,
    left_out: Sequence[str] = (),
) -> dict[str, Any]:
    """The artifact's content for a fitted ``model`` (whose machine-only state is reset).

    ``labels`` (the training labels, or each one's count) and ``positive_class`` (the
    configured one, if any) decide the positive class: see ``keel.training.classes``.
    ``baseline`` is the trivial model fitted on the same rows, which the gate's baseline
    check scores. ``left_out`` names the training table's columns the model does not take
    (key, time, ids): serving accepts and logs them.
    """
    reset_runtime_state(model)
    if baseline is not None:
        reset_runtime_state(baseline)
    classes = choose_classes(model, labels, positive_class, target)
    return {
        "format": FORMAT,
        "model": model,
        "schema": schema,
        "target": target,
        "task": classes.task,
        "positive": classes.positive,
        "classes": classes.to_dict(),
        "baseline": baseline,
        "left_out": [str(name) for name in left_out],
    }


def dump_bundle(bundle: dict[str, Any]) -> bytes:
    """The bundle's bytes: pickle protocol 5, no compression, no timestamps."""
    return pickle.dumps(bundle, protocol=PROTOCOL)


def load_bundle(artifacts: ArtifactStore, digest: str) -> dict[str, Any]:
    """Load a verified artifact back; ``ModelLoadError`` if it is not a Keel model."""
    data = artifacts.get_bytes(digest)
    try:
        bundle = pickle.loads(data)  # the digest was verified: these are our own bytes
    except Exception as error:
        raise ModelLoadError(
            f"artifact {digest[:12]} does not load as a model ({type(error).__name__}); "
            "train or import the version again"
        ) from None
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise ModelLoadError(f"artifact {digest[:12]} is not a Keel model bundle")
    return bundle


def predict_scores(bundle: dict[str, Any], frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    """The positive class's probabilities (binary), the top class's probability
    (multiclass), or predictions (regression)."""
    if bundle["task"] == "classification":
        proba = predict_proba(bundle, frame)
        if bundle.get("positive") is None:
            return np.asarray(proba.max(axis=1))
        return proba[:, positive_index(bundle)]
    X = prepare(frame, bundle["schema"])
    return np.asarray(bundle["model"].predict(X), dtype="float64")


def predict_proba(bundle: dict[str, Any], frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    """Every class's probability, one column per class in the model's (sorted) order."""
    X = prepare(frame, bundle["schema"])
    return np.asarray(bundle["model"].predict_proba(X), dtype="float64")


def positive_index(bundle: dict[str, Any]) -> int:
    """The column of the positive class in ``predict_proba``'s output."""
    classes = [_plain(value) for value in bundle["model"].classes_]
    return classes.index(bundle["positive"])


def reset_runtime_state(model: Any) -> None:
    """Reset fitted state that records the machine or the process, not the model, so the
    bytes don't vary.

    - scikit-learn's histogram gradient boosting keeps the OpenMP thread count of the fit
      (``_BinMapper.n_threads``); predictions do not depend on it, but the pickle does, so
      the same training on a 2-core and an 8-core machine would give different digests.
    - Pickle shares equal strings only when they are the same object. An estimator that
      went through a pickle round trip inside the process (joblib workers, a copy) holds
      attribute names that are equal to, but not the same object as, the names of its
      siblings, so one long-lived process wrote other bytes than a fresh one. Attribute
      names are made the interned ones, which is what a fresh fit holds.
    """
    stack, seen = [model], set()
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        for name in _RUNTIME_ONLY.get(type(obj).__name__, ()):
            setattr(obj, name, None)
        if _is_fitted_object(obj):
            _intern_names(vars(obj))
        stack.extend(_fitted_children(obj))


def _intern_names(attributes: dict[str, Any]) -> None:
    """Re-key ``attributes`` in place, in order, with interned names."""
    items = list(attributes.items())
    attributes.clear()
    attributes.update((sys.intern(k) if type(k) is str else k, v) for k, v in items)


def _is_fitted_object(obj: Any) -> bool:
    module = type(obj).__module__
    return hasattr(obj, "__dict__") and module.split(".")[0] in _MODEL_PACKAGES


def _fitted_children(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return list(obj.values())
    if isinstance(obj, list | tuple):
        return [item for item in obj if hasattr(item, "__dict__") or isinstance(item, list | tuple)]
    if _is_fitted_object(obj):
        return list(vars(obj).values())
    return []


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def model_classes(project: Project, version: int) -> ModelClasses:
    """The task, classes and positive class of ``version``, from its registry record.

    Versions recorded before classes were recorded are answered from their artifact.
    """
    from keel.training.registry import Registry

    registry = Registry(project.store)
    recorded = registry.record(version).get("classes")
    if recorded:
        return ModelClasses.from_dict(recorded)
    return classes_from_bundle(load_bundle(project.artifacts, registry.get(version).artifact))
