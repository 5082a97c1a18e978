"""Drift settings and results: small frozen values, JSON-ready."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from keel.monitoring.stats import Correction

__all__ = ["ColumnDrift", "Decision", "DriftReport", "DriftSettings", "Moved"]

Decision = Literal["drift", "small_shift", "no_drift", "insufficient_data", "untestable"]
"""A column's verdict. ``small_shift``: significant, but under the effect gate (info, shown,
never an alert by itself). ``untestable``: nothing to compare (every window value null,
or a reference with no values), listed apart and left out of the window's verdict."""
TestName = Literal["ks", "chi2", "psi", "mmd"]

DEFAULT_MIN_EFFECT: Mapping[str, float] = {"ks": 0.1, "chi2": 0.05, "psi": 0.1, "mmd": 0.01}


@dataclass(frozen=True)
class DriftSettings:
    """How drift is decided.

    ``alpha`` is the level for the whole family of columns after ``correction``.
    ``min_effect`` is the smallest effect worth an alert, per test (KS distance, total
    variation distance for chi2, PSI, MMD^2). A column drifts only when its corrected
    p-value is below ``alpha`` AND its effect reaches ``min_effect``. A window whose
    smallest significant effect is larger than ``min_effect`` cannot see the effect that
    matters, so unless it finds drift it reports ``insufficient_data``. A significant
    shift under the gate is a ``small_shift``: reported, not alerted on.
    ``column_min_effect`` sets the gate of single columns (``{"humidity": 0.05}``), in
    that column's own effect measure, whatever its test.

    ``alpha`` is 0.01 rather than 0.05 although the false-alarm budget is 5% of
    unshifted windows: Holm at 0.05 spends the whole budget (6 of 100 seeded 50-row
    windows alarm) and lets false columns in beside real shifts, for little power. What
    0.01 costs: a category share moving 0.40 -> 0.30 among 25 columns is found in about
    85-90% of 500-row windows (chi-square, 3 degrees, at 0.01/21), about 99% from 1,000
    rows; a window that misses it says ``insufficient_data`` for that column.
    """

    tests: tuple[TestName, ...] = ("ks", "chi2")
    correction: Correction = "holm"
    alpha: float = 0.01
    min_effect: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIN_EFFECT))
    column_min_effect: Mapping[str, float] = field(default_factory=dict)
    exact_rows: int = 20_000
    psi_bins: int = 10
    mmd_sample: int = 300
    mmd_min_rows: int = 100
    permutations: int = 200
    seed: int = 0
    top: int = 3

    def effect_gate(self, test: str, column: str | None = None) -> float:
        """The smallest effect worth an alert: the column's own gate, else the test's."""
        if column is not None and column in self.column_min_effect:
            return float(self.column_min_effect[column])
        return float(self.min_effect.get(test, DEFAULT_MIN_EFFECT[test]))


@dataclass(frozen=True)
class Moved:
    """One bucket's share in the reference and in the window."""

    bucket: str
    reference: float
    window: float

    @property
    def change(self) -> float:
        return self.window - self.reference


@dataclass(frozen=True)
class ColumnDrift:
    """The verdict on one column (or on all numeric columns together, for MMD)."""

    column: str
    role: Literal["feature", "output", "multivariate"]
    test: TestName
    statistic: float
    p_value: float
    effect: float
    effect_name: str
    min_effect: float
    critical_effect: float
    rows: int
    reference_rows: int
    nulls: int = 0
    reference_nulls: int = 0
    psi: float | None = None
    moved: tuple[Moved, ...] = ()
    note: str | None = None
    p_adjusted: float = 1.0
    decision: Decision = "no_drift"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["moved"] = [{**asdict(m), "change": m.change} for m in self.moved]
        return data


@dataclass(frozen=True)
class DriftReport:
    """Every column's verdict and the window's overall decision."""

    columns: tuple[ColumnDrift, ...]
    rows: int
    reference_rows: int
    correction: Correction
    alpha: float

    model_version: str | None = None
    other_versions: Mapping[str, int] = field(default_factory=dict)

    @property
    def drifted(self) -> list[str]:
        return self._named("drift")

    @property
    def small_shifts(self) -> list[str]:
        return self._named("small_shift")

    @property
    def untestable(self) -> list[str]:
        return self._named("untestable")

    def _named(self, decision: Decision) -> list[str]:
        return [c.column for c in self.columns if c.decision == decision]

    @property
    def decision(self) -> Decision:
        """``drift`` if any column drifts; else ``insufficient_data`` if any column could
        not see the configured effect, or none could be tested; else ``no_drift`` (small
        shifts and untestable columns are listed apart, not part of the verdict)."""
        decisions = {column.decision for column in self.columns}
        if "drift" in decisions:
            return "drift"
        if "insufficient_data" in decisions or decisions <= {"untestable"}:
            return "insufficient_data"
        return "no_drift"

    def column(self, name: str) -> ColumnDrift:
        return next(c for c in self.columns if c.column == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "drifted": self.drifted,
            "small_shifts": self.small_shifts,
            "untestable": self.untestable,
            "model_version": self.model_version,
            "other_versions": dict(self.other_versions),
            "rows": self.rows,
            "reference_rows": self.reference_rows,
            "correction": self.correction,
            "alpha": self.alpha,
            "columns": [column.to_dict() for column in self.columns],
        }
