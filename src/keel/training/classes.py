"""A model version's classes and its positive class, chosen once, at training.

The positive class of a binary target is ``training.positive_class`` when set; otherwise
the minority class of the training labels, because the rare class is nearly always the
one a model is for (defaults, fraud, churn) and metrics such as average precision and F1
describe only the class called positive. On a tie the label that sorts last wins, which
is scikit-learn's own convention (``classes_[1]``), so a balanced target keeps the class
it always had. The choice is stored in the model artifact and the run record:
``model_classes(project, version)`` is how serving and monitoring learn it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from keel.errors import ConfigError

__all__ = ["ModelClasses", "choose_classes", "classes_from_bundle"]

CONFIGURED = "training.positive_class"
MINORITY = "the minority class of the training labels"
TIE = "a tie in the training labels: the label that sorts last"
_YAML_TRUE = {"true", "yes", "y", "on"}
_YAML_FALSE = {"false", "no", "n", "off"}


@dataclass(frozen=True)
class ModelClasses:
    """What a model predicts: its task, classes (sorted) and the binary positive class."""

    task: str
    classes: tuple[Any, ...] = ()
    positive: Any = None
    chosen_by: str | None = None
    counts: tuple[int, ...] = ()

    @property
    def binary(self) -> bool:
        return self.task == "classification" and len(self.classes) == 2

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "classes": list(self.classes),
            "positive": self.positive,
            "chosen_by": self.chosen_by,
            "counts": list(self.counts),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelClasses:
        return cls(
            data["task"],
            tuple(data.get("classes") or ()),
            data.get("positive"),
            data.get("chosen_by"),
            tuple(data.get("counts") or ()),
        )


def choose_classes(
    model: Any, labels: Sequence[Any] | Mapping[Any, int] | None, configured: Any, target: str
) -> ModelClasses:
    """The classes of a fitted ``model`` and its positive class (see the module docstring).

    ``labels`` are the training labels, or each one's count (for the minority count);
    ``configured`` is ``training.positive_class``. A configured class that is not a
    label, or one set for a multiclass target or a regressor, is a ``ConfigError``.
    """
    found = getattr(model, "classes_", None)
    if not hasattr(model, "predict_proba") or found is None:
        if configured is not None:
            raise ConfigError(
                "set, but training.model is a regressor", key=CONFIGURED, hint="remove it"
            )
        return ModelClasses("regression")
    classes = tuple(_plain(value) for value in found)
    counts = _counts(classes, labels)
    if len(classes) != 2:
        if configured is not None:
            raise ConfigError(
                f"set to {configured!r}, but target '{target}' has {len(classes)} classes "
                f"({_listed(classes)})",
                key=CONFIGURED,
                hint="positive_class applies to binary targets only, so remove it",
            )
        return ModelClasses("classification", classes, None, None, counts)
    if configured is not None:
        positive = match_label(configured, classes)
        if positive is None:
            raise ConfigError(
                f"{configured!r} is not a label of target '{target}' "
                f"(its labels are {_listed(classes)})",
                key=CONFIGURED,
                hint="set it to one of them",
            )
        return ModelClasses("classification", classes, positive, CONFIGURED, counts)
    index, why = _minority(counts)
    return ModelClasses("classification", classes, classes[index], why, counts)


def match_label(configured: Any, classes: Sequence[Any]) -> Any:
    """The class ``configured`` names: equal, equal as text, or a YAML yes/no for a label.

    YAML reads an unquoted ``Yes`` as ``true``, so ``positive_class: Yes`` still names
    the label ``"Yes"`` of a text target.
    """
    for label in classes:
        if type(label) is type(configured) and label == configured:
            return label
    for label in classes:
        if str(label) == str(configured):
            return label
    if isinstance(configured, bool):
        spellings = _YAML_TRUE if configured else _YAML_FALSE
        for label in classes:
            if isinstance(label, str) and label.lower() in spellings:
                return label
    return None


def classes_from_bundle(bundle: dict[str, Any]) -> ModelClasses:
    """The classes a model artifact records (older artifacts: derived from the model)."""
    if bundle.get("classes"):
        return ModelClasses.from_dict(bundle["classes"])
    if bundle["task"] != "classification":
        return ModelClasses("regression")
    classes = tuple(_plain(value) for value in bundle["model"].classes_)
    positive = bundle.get("positive") if len(classes) == 2 else None
    return ModelClasses("classification", classes, positive, "the label that sorts last")


def _counts(
    classes: tuple[Any, ...], labels: Sequence[Any] | Mapping[Any, int] | None
) -> tuple[int, ...]:
    if labels is None:
        return ()
    if isinstance(labels, Mapping):
        return tuple(int(labels.get(label, 0)) for label in classes)
    values = np.asarray(labels)
    return tuple(int(np.sum(values == label)) for label in classes)


def _minority(counts: tuple[int, ...]) -> tuple[int, str]:
    if not counts:
        return 1, "the label that sorts last"
    if counts[0] == counts[1]:
        return 1, TIE
    return (0 if counts[0] < counts[1] else 1), MINORITY


def _listed(classes: Sequence[Any]) -> str:
    return ", ".join(repr(label) for label in classes)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
