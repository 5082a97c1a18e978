"""Request validation compiled from the model's recorded input schema, and its policy.

``compile_validator(schema, policy)`` turns the schema the training layer recorded (one
entry per column: name, type, nullable, range or categories) into a list of small
closures, built once per model. Checking a row is a loop over those closures: no
pydantic model, no reflection, one finding per bad field. Pure: no I/O.

Each finding has a kind (``check``): ``type`` (wrong type, NaN, null or missing where
training had none), ``range`` (outside the training range widened by ``range_margin``),
``category`` (a category training never saw) or ``extra`` (a field the model does not
take). The policy says what each kind does to its row: ``reject`` (the row gets its
errors, not a prediction), ``flag`` (the model answers; the finding is in the response
and the log) or ``fallback`` (the fallback chain answers instead of the model). A row
takes the strictest action among its findings; a row without findings is answered.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Finding",
    "Screening",
    "ValidationPolicy",
    "Validator",
    "compile_validator",
]

Problem = tuple[str, str]  # (check kind, message)
Check = Callable[[Any], Problem | None]
Column = tuple[str, bool, Check, frozenset[type], float, float]

_EARLIER = {"ignore": "flag", "allow": "flag"}  # ranges: ignore, unseen_categories: allow
_STRICTNESS = {"flag": 0, "fallback": 1, "reject": 2}


@dataclass(frozen=True)
class ValidationPolicy:
    """What each kind of finding does to its row: reject, flag or fallback."""

    types: str = "reject"  # reject | fallback: wrong type, null or missing field
    ranges: str = "flag"  # reject | flag | fallback (the earlier ``ignore`` reads as flag)
    range_margin: float = 0.1  # share of the training span allowed beyond each end
    unseen_categories: str = "flag"  # reject | flag | fallback (earlier ``allow``: flag)
    extra_fields: str = "reject"  # reject | ignore
    passthrough: tuple[str, ...] = ()  # fields kept (logged, cache key) but not features

    def action(self, check: str) -> str:
        """reject, flag or fallback for a finding of kind ``check``."""
        chosen = {"type": self.types, "range": self.ranges, "category": self.unseen_categories}
        value = chosen.get(check, "reject")
        return _EARLIER.get(value, value)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem with one field of one instance."""

    index: int
    field: str
    message: str
    check: str = "type"

    def to_dict(self) -> dict[str, Any]:
        """As the response and the prediction log carry it, in the row's own slot."""
        return {"field": self.field, "check": self.check, "msg": self.message}

    def to_detail(self) -> dict[str, Any]:
        """As the 422 body's ``detail`` names it: where in the request, and what."""
        return {"loc": ["instances", self.index, self.field], "msg": self.message}


@dataclass(frozen=True)
class Screening:
    """Validated rows, and for the rows with findings their findings and action."""

    rows: list[dict[str, Any]]
    findings: dict[int, list[Finding]] = field(default_factory=dict)
    actions: dict[int, str] = field(default_factory=dict)  # flag | fallback | reject

    def indexes(self, action: str) -> list[int]:
        """The rows whose action is ``action`` (``answer``: flagged rows and clean ones)."""
        if action == "answer":
            return [i for i in range(len(self.rows)) if self.actions.get(i, "flag") == "flag"]
        return [i for i, chosen in self.actions.items() if chosen == action]


def screen(
    findings: list[Finding], policy: ValidationPolicy
) -> tuple[dict[int, list[Finding]], dict[int, str]]:
    """Findings by row and each row's action: the strictest its findings call for."""
    grouped: dict[int, list[Finding]] = {}
    actions: dict[int, str] = {}
    for finding in findings:
        grouped.setdefault(finding.index, []).append(finding)
        action = policy.action(finding.check)
        current = actions.get(finding.index)
        if current is None or _STRICTNESS[action] > _STRICTNESS[current]:
            actions[finding.index] = action
    return grouped, actions


class Validator:
    """Checks instances against a compiled schema; returns the rows and their findings."""

    def __init__(self, columns: list[Column], policy: ValidationPolicy) -> None:
        self.columns = columns
        self.names = frozenset(column[0] for column in columns)
        self.policy = policy
        self._allowed = self.names | frozenset(policy.passthrough)

    def validate(self, instances: Sequence[Any]) -> tuple[list[dict[str, Any]], list[Finding]]:
        """The rows (a wrongly typed value read as missing) and every finding, in order."""
        rows: list[dict[str, Any]] = []
        findings: list[Finding] = []
        for index, instance in enumerate(instances):
            if not isinstance(instance, Mapping):
                findings.append(Finding(index, "", "an instance must be a JSON object"))
                rows.append({})
                continue
            rows.append(self._row(index, instance, findings))
        return rows, findings

    def screen(self, instances: Sequence[Any]) -> Screening:
        """The rows, their findings and what the policy does with each row."""
        rows, findings = self.validate(instances)
        if not findings:
            return Screening(rows)
        grouped, actions = screen(findings, self.policy)
        return Screening(rows, grouped, actions)

    def _row(
        self, index: int, instance: Mapping[str, Any], findings: list[Finding]
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
                    message = "field required" if missing else "may not be null"
                    findings.append(Finding(index, name, message))
                row[name] = None
                continue
            problem = check(value)
            if problem is not None:
                kind, message = problem
                findings.append(Finding(index, name, message, kind))
                if kind == "type":  # logged and passed on as missing, never as a bad type
                    value = None
            row[name] = value
        if len(instance) > len(row) or not self.names.issuperset(instance):
            self._extras(index, instance, row, findings)
        return row

    def _extras(
        self,
        index: int,
        instance: Mapping[str, Any],
        row: dict[str, Any],
        findings: list[Finding],
    ) -> None:
        for name in instance:
            if name in self.names:
                continue
            if name in self._allowed:
                row[name] = instance[name]
            elif self.policy.extra_fields == "reject":
                findings.append(Finding(index, str(name), "is not an input of this model", "extra"))


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
        return _category_check(column)
    if kind == "boolean":
        return _boolean
    bounds = _bounds(column, policy)
    return _number_check(kind == "integer", bounds)


def _boolean(value: Any) -> Problem | None:
    return None if isinstance(value, bool) else ("type", "must be true or false")


def _bounds(column: Mapping[str, Any], policy: ValidationPolicy) -> tuple[float, float] | None:
    low, high = column.get("min"), column.get("max")
    if low is None or high is None:
        return None
    slack = (float(high) - float(low)) * policy.range_margin
    return float(low) - slack, float(high) + slack


def _number_check(integer: bool, bounds: tuple[float, float] | None) -> Check:
    kind = "an integer" if integer else "a number"

    def check(value: Any) -> Problem | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "type", f"must be {kind}"
        if isinstance(value, float):
            if not math.isfinite(value):
                return "type", f"must be {kind}, not NaN or infinity"
            if integer and not value.is_integer():
                return "type", "must be an integer"
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            return "range", f"is outside {bounds[0]:g} to {bounds[1]:g} (the training range)"
        return None

    return check


def _category_check(column: Mapping[str, Any]) -> Check:
    known = frozenset(str(c) for c in column.get("categories") or ())
    shown = ", ".join(sorted(known)[:10]) + (", ..." if len(known) > 10 else "")

    def check(value: Any) -> Problem | None:
        if not isinstance(value, str):
            return "type", "must be a string"
        if known and value not in known:
            return "category", f"'{value[:50]}' is not a known category ({shown})"
        return None

    return check
