"""One gate check and the threshold language: shared by the gate and its slice checks."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

from keel.expressions import parse_threshold

__all__ = ["NOT", "OPS", "Check", "parse_threshold"]

NOT = {">=": "<", ">": "<=", "<=": ">", "<": ">="}
OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}


@dataclass(frozen=True)
class Check:
    """One gate check: what was measured, against what, and whether it passed.

    ``compared_with`` is the other model's score on the same rows (the trivial baseline,
    or production). ``statement`` is the comparison actually made, when it is not
    "value threshold" (a slice is judged by its confidence bound). A check that is not
    ``judged`` (too little evidence to decide) never fails the gate and is shown without
    a tick.
    """

    name: str
    passed: bool
    value: float | None
    threshold: str
    detail: str = ""
    compared_with: float | None = None
    judged: bool = True
    statement: str = ""  # the comparison as printed, when "value threshold" would mislead

    @property
    def outcome(self) -> str:
        if not self.judged:
            return "not judged"
        return "passed" if self.passed else "failed"

    @classmethod
    def not_judged(cls, name: str, why: str, value: float | None = None) -> Check:
        return cls(name, True, value, "not judged", why, judged=False)
