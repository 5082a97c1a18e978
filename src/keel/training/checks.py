"""One gate check and the threshold language: shared by the gate and its slice checks."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from keel.errors import ConfigError

__all__ = ["NOT", "OPS", "Check", "parse_threshold"]

_THRESHOLD = re.compile(r"^\s*(>=|<=|>|<|==)\s*(-?\d+(?:\.\d+)?(?:[eE]-?\d+)?)\s*$")
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


def parse_threshold(text: str) -> tuple[str, float]:
    """``">= 0.8"`` as ``(">=", 0.8)``; a ConfigError for anything else."""
    match = _THRESHOLD.match(text)
    if match is None:
        raise ConfigError(f"gate threshold '{text}' is not a comparison; write e.g. \">= 0.80\"")
    return match.group(1), float(match.group(2))
