"""What ``keel init --from TABLE`` writes, decided from the table's columns (pure).

``plan_project`` takes the inferred checks, the target's values and the declared columns,
and returns the keel.yaml mapping: one source, a training section whose task (classification
or regression) and default estimator follow from the target, a gate that a model must beat
chance to pass, serving keyed by the entity, and monitoring against the production model.
Every refusal is a ``TrainingDataError`` or ``ProjectError`` naming the column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from keel.errors import ProjectError, TrainingDataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MAX_MODEL_CATEGORIES",
    "Declared",
    "Plan",
    "check_declared",
    "plan_project",
    "task_of",
]

Task = Literal["classification", "regression"]
MAX_MODEL_CATEGORIES = 255
"""The default estimator takes at most this many categories in a text feature."""
_FEW_NUMBERS = 20
"""A whole-number target with at most this many values is a set of classes."""
_ESTIMATORS = {
    "classification": "sklearn.ensemble.HistGradientBoostingClassifier",
    "regression": "sklearn.ensemble.HistGradientBoostingRegressor",
}
_METRICS = {
    "classification": ["roc_auc", "accuracy", "log_loss"],
    "regression": ["rmse", "mae", "r2"],
}
_TRUE, _FALSE = {"yes", "y", "true", "t", "1"}, {"no", "n", "false", "f", "0"}
_BETTER_THAN_CHANCE = {"classification": ("roc_auc", "> 0.5"), "regression": ("r2", "> 0")}


@dataclass(frozen=True)
class Declared:
    """What the user named on the command line."""

    name: str
    source: str
    location: dict[str, str]
    target: str
    time: str | None = None
    keys: tuple[str, ...] = ()
    positive: str | None = None


@dataclass(frozen=True)
class Plan:
    """The keel.yaml mapping, the task, and one note per column left out of the model."""

    config: dict[str, Any]
    task: Task
    notes: tuple[str, ...]


def task_of(target: pd.Series) -> Task:
    """Classification for text, booleans and whole numbers with few values; else regression."""
    import pandas as pd

    values = target.dropna()
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return "classification"
    whole = bool((values == values.round()).all())
    return "classification" if whole and values.nunique() <= _FEW_NUMBERS else "regression"


def plan_project(
    declared: Declared,
    checks: dict[str, Any],
    target: pd.Series,
    text_cardinality: dict[str, int],
    empty: Sequence[str],
) -> Plan:
    """The project for ``declared``; ``text_cardinality`` counts each text column's values."""
    check_declared(declared, list(checks["columns"]))
    task = _check_target(declared, target)
    wide = {n: k for n, k in text_cardinality.items() if k > MAX_MODEL_CATEGORIES}
    notes = tuple(
        f"column '{name}' has {count} distinct text values, more than the default model "
        f"takes ({MAX_MODEL_CATEGORIES}), so it is left out of the features"
        for name, count in wide.items()
        if name not in declared.keys and name != declared.target
    )
    dated = _dated(checks, declared)
    notes += tuple(
        f"column '{name}' holds dates, which the default model would take as categories that "
        "every new date misses, so it is left out of the features; add a number derived from "
        "it (e.g. days since) to use it"
        for name in dated
    )
    left_out = [*declared.keys, *([declared.time] if declared.time else []), *empty, *wide, *dated]
    exclude = [n for n in dict.fromkeys(left_out) if n != declared.target]
    training = _training(declared, task, exclude, target)
    config = {
        "name": declared.name,
        "sources": {declared.source: _source(declared, checks)},
        "training": training,
        "gate": _gate(task),
        "serving": {"entity": declared.keys[0]} if declared.keys else {},
        "monitoring": {"reference": "model:production"},
    }
    return Plan(config, task, notes)


def _dated(checks: dict[str, Any], declared: Declared) -> list[str]:
    """Date and timestamp columns other than the time column and the target."""
    columns: dict[str, dict[str, Any]] = checks["columns"]
    return [
        name
        for name, check in columns.items()
        if check.get("type") in ("date", "timestamp")
        and name not in (declared.time, declared.target)
    ]


def check_declared(declared: Declared, columns: list[str]) -> None:
    """Refuse a declared column the table does not have, or a target that is the key."""
    listed = ", ".join(columns[:20])
    for option, name in [("--target", declared.target), ("--time", declared.time)] + [
        ("--key", key) for key in declared.keys
    ]:
        if name is not None and name not in columns:
            raise ProjectError(
                f"the table has no column '{name}' ({option}); its columns are {listed}"
            )
    if declared.target in (*declared.keys, declared.time):
        raise TrainingDataError(
            f"the target '{declared.target}' is also the key or time column; pass the column "
            "that holds the outcome to predict as --target"
        )


def _check_target(declared: Declared, target: pd.Series) -> Task:
    name, values = declared.target, target.dropna()
    if values.empty:
        raise TrainingDataError(
            f"the target column '{name}' is entirely null; fill in its labels, or pass the "
            "column that holds the outcome as --target"
        )
    classes = values.astype(str).unique()
    if len(classes) == 1:
        raise TrainingDataError(
            f"the target column '{name}' holds one class ('{classes[0]}') and a model needs at "
            "least two; add rows of the other outcomes, or pass another --target"
        )
    task = task_of(target)
    if task == "classification" and len(classes) > max(_FEW_NUMBERS, 0.5 * len(values)):
        raise TrainingDataError(
            f"the target column '{name}' has {len(classes)} distinct values in {len(values)} "
            "labelled rows, which looks like an id or free text, not an outcome; pass the column "
            "that holds the outcome as --target"
        )
    if declared.positive is not None and _label(declared.positive, target) is None:
        shown = ", ".join(sorted(classes)[:10])
        raise TrainingDataError(
            f"--positive '{declared.positive}' is not a value of the target '{name}' "
            f"(its values are {shown}); pass one of them"
        )
    return task


def _source(declared: Declared, checks: dict[str, Any]) -> dict[str, Any]:
    source: dict[str, Any] = dict(declared.location)
    if declared.keys:
        source["key"] = declared.keys[0] if len(declared.keys) == 1 else list(declared.keys)
    if declared.time:
        source["timestamp"] = declared.time
    return {**source, "checks": checks}


def _training(
    declared: Declared, task: Task, exclude: list[str], target: pd.Series
) -> dict[str, Any]:
    split: dict[str, Any] = {"by": "random", "test_size": 0.2}
    if declared.time:
        split = {"by": "time", "column": declared.time, "test_size": 0.2}
    model = {"estimator": _ESTIMATORS[task], "params": {"max_iter": 200, "early_stopping": True}}
    training: dict[str, Any] = {
        "data": declared.source,
        "target": declared.target,
        "exclude": exclude,
        "model": model,
        "split": split,
        "seed": 42,
        "metrics": _METRICS[task],
    }
    if declared.positive is not None:
        training["positive_class"] = _positive(declared, task, target)
    return training


def _positive(declared: Declared, task: Task, target: pd.Series) -> Any:
    """The ``--positive`` label in the target's own type (``_check_target`` made sure the
    target holds it); one sentence when the target has other than two classes."""
    values = target.dropna().unique()
    if task != "classification" or len(values) != 2:
        raise ProjectError(
            f"--positive names one class of a two-class target, but '{declared.target}' has "
            f"{len(values)} distinct values; leave --positive out"
        )
    return _label(str(declared.positive), target)


def _label(text: str, target: pd.Series) -> Any:
    """The target value ``text`` names, in the target's own type, or None.

    A CSV source reads true/false columns as booleans (Yes/No stays text), so those spellings
    name True and False there.
    """
    import pandas as pd

    if pd.api.types.is_bool_dtype(target.dropna()):
        spelled = text.strip().lower()
        return True if spelled in _TRUE else False if spelled in _FALSE else None
    for value in target.dropna().unique():
        if str(value) == text:
            return value.item() if hasattr(value, "item") else value
    return None


def _gate(task: Task) -> dict[str, Any]:
    metric, threshold = _BETTER_THAN_CHANCE[task]
    return {
        "thresholds": {metric: threshold},
        "vs_production": {metric: {"max_drop": 0.01}},
        "latency_p99_ms": 200,
        "max_size_mb": 100,
    }
