"""Request validation compiled from the model's recorded input schema.

``compile_validator(schema, policy)`` turns the schema the training layer recorded (one
entry per column: name, type, nullable, range or categories) into a list of small
closures, built once per model. Checking a row is a loop over those closures: no
pydantic model, no reflection, one message per bad field. Pure: no I/O.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["FieldError", "ValidationPolicy", "Validator", "compile_validator"]

Check = Callable[[Any], str | None]
Column = tuple[str, bool, Check, frozenset[type], float, float]


@dataclass(frozen=True)
class ValidationPolicy:
    """How strict validation is beyond types and required fields."""

    ranges: str = "reject"  # reject | ignore: values outside the training range
    range_margin: float = 0.1  # share of the training span allowed beyond each end
    unseen_categories: str = "reject"  # reject | allow (the model sees them as missing)
    extra_fields: str = "reject"  # reject | ignore
    passthrough: tuple[str, ...] = ()  # fields kept (logged, cache key) but not features


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of one instance."""

    index: int
    field: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"loc": ["instances", self.index, self.field], "msg": self.message}


class Validator:
    """Checks instances against a compiled schema; returns clean rows or field errors."""

    def __init__(self, columns: list[Column], policy: ValidationPolicy) -> None:
        self.columns = columns
        self.names = frozenset(column[0] for column in columns)
        self.policy = policy
        self._allowed = self.names | frozenset(policy.passthrough)

    def validate(self, instances: Sequence[Any]) -> tuple[list[dict[str, Any]], list[FieldError]]:
        rows: list[dict[str, Any]] = []
        errors: list[FieldError] = []
        for index, instance in enumerate(instances):
            if not isinstance(instance, Mapping):
                errors.append(FieldError(index, "", "an instance must be a JSON object"))
                continue
            rows.append(self._row(index, instance, errors))
        return rows, errors

    def _row(
        self, index: int, instance: Mapping[str, Any], errors: list[FieldError]
    ) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for name, nullable, check, fast, low, high in self.columns:
            value: Any = instance.get(name)
            if type(value) in fast and low <= value <= high:  # the common case, no call
                row[name] = value
                continue
            if value is None:
                if not nullable:
                    missing = name not in instance
                    errors.append(
                        FieldError(index, name, "field required" if missing else "may not be null")
                    )
                row[name] = None
                continue
            problem = check(value)
            if problem is not None:
                errors.append(FieldError(index, name, problem))
            row[name] = value
        if len(instance) > len(row) or not self.names.issuperset(instance):
            self._extras(index, instance, row, errors)
        return row

    def _extras(
        self, index: int, instance: Mapping[str, Any], row: dict[str, Any], errors: list[FieldError]
    ) -> None:
        for name in instance:
            if name in self.names:
                continue
            if name in self._allowed:
                row[name] = instance[name]
            elif self.policy.extra_fields == "reject":
                errors.append(FieldError(index, str(name), "is not an input of this model"))


def compile_validator(schema: Sequence[Mapping[str, Any]], policy: ValidationPolicy) -> Validator:
    """A validator for rows of the model whose input schema is ``schema``."""
    columns = [_column(column, policy) for column in schema]
    return Validator(columns, policy)


def _column(column: Mapping[str, Any], policy: ValidationPolicy) -> Column:
    """Name, nullable, full check, and the types and bounds a value may skip it with."""
    kind = column.get("type", "number")
    fast: frozenset[type] = frozenset()
    low, high = -sys.float_info.max, sys.float_info.max  # NaN and infinities fail these
    if kind in ("number", "integer"):
        fast = frozenset({int}) if kind == "integer" else frozenset({int, float})
        low, high = _bounds(column, policy) or (low, high)
    name, nullable = str(column["name"]), bool(column.get("nullable", False))
    return name, nullable, _check(column, policy), fast, low, high


def _check(column: Mapping[str, Any], policy: ValidationPolicy) -> Check:
    kind = column.get("type", "number")
    if kind == "category":
        return _category_check(column, policy)
    if kind == "boolean":
        return _boolean
    bounds = _bounds(column, policy)
    return _number_check(kind == "integer", bounds)


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _bounds(column: Mapping[str, Any], policy: ValidationPolicy) -> tuple[float, float] | None:
    low, high = column.get("min"), column.get("max")
    if policy.ranges != "reject" or low is None or high is None:
        return None
    slack = (float(high) - float(low)) * policy.range_margin
    return float(low) - slack, float(high) + slack


def _number_check(integer: bool, bounds: tuple[float, float] | None) -> Check:
    kind = "an integer" if integer else "a number"

    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be {kind}"
        if isinstance(value, float):
            if not math.isfinite(value):
                return f"must be {kind}, not NaN or infinity"
            if integer and not value.is_integer():
                return "must be an integer"
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            return f"must be between {bounds[0]:g} and {bounds[1]:g} (the training range)"
        return None

    return check


def _category_check(column: Mapping[str, Any], policy: ValidationPolicy) -> Check:
    known = frozenset(str(c) for c in column.get("categories") or ())
    strict = policy.unseen_categories == "reject" and bool(known)
    shown = ", ".join(sorted(known)[:10]) + (", ..." if len(known) > 10 else "")

    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return "must be a string"
        if strict and value not in known:
            return f"'{value[:50]}' is not a known category ({shown})"
        return None

    return check
