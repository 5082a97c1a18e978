"""How the pilot is laid out: training that lives only in a notebook, and no tests."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import PurePosixPath

from keel.audit._kinds import finding, finding_at
from keel.audit._model import Finding
from keel.audit._names import aliases, qualname
from keel.audit._pilot import CodeUnit, Pilot

__all__ = ["has_tests", "is_test_file", "no_tests", "notebook_only_training", "training_calls"]

_TRAIN_FUNCTIONS = {"xgboost.train", "lightgbm.train", "catboost.train"}


def training_calls(unit: CodeUnit, names: dict[str, str]) -> Iterator[ast.Call]:
    """``anything.fit(...)`` (chained calls too) and the boosting libraries' ``train(...)``."""
    for node in unit.nodes:
        if isinstance(node, ast.Call) and _trains(node, names):
            yield node


def _trains(call: ast.Call, names: dict[str, str]) -> bool:
    if isinstance(call.func, ast.Attribute) and call.func.attr == "fit":
        return True
    return qualname(call.func, names) in _TRAIN_FUNCTIONS


def notebook_only_training(pilot: Pilot) -> Iterator[Finding]:
    names = aliases(node for unit in pilot.code for node in unit.nodes)
    in_notebooks = [
        (unit, call)
        for unit in pilot.code
        if unit.in_notebook
        for call in training_calls(unit, names)
    ]
    in_modules = any(
        next(training_calls(unit, names), None) is not None
        for unit in pilot.code
        if not unit.in_notebook
    )
    if in_notebooks and not in_modules and not pilot.single_file:
        unit, call = in_notebooks[0]
        count = len(in_notebooks)
        message = f"the model is trained only in a notebook ({count} fit call(s), none in .py)"
        yield finding_at("notebook-only-training", unit, call, message)


def is_test_file(path: str) -> bool:
    """A test_*.py, *_test.py or conftest.py file, or any file under a tests/ (or test/) folder."""
    parts = PurePosixPath(path).parts
    if {"tests", "test"} & set(parts[:-1]):
        return True
    return any(fnmatch(parts[-1], pattern) for pattern in ("test_*.py", "*_test.py", "conftest.py"))


def has_tests(paths: tuple[str, ...]) -> bool:
    return any(is_test_file(path) for path in paths)


def no_tests(pilot: Pilot) -> Iterator[Finding]:
    if pilot.code and not pilot.single_file and not has_tests(pilot.paths):
        yield finding("no-tests", ".", None, "no tests: no test_*.py file and no tests/ folder")
