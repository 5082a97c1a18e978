"""The data layer's values: profiles, findings, reports and data versions.

All are small frozen dataclasses with ``to_dict`` / ``from_dict`` so they round-trip
through JSON columns in the metadata store unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "QUANTILES",
    "ColumnProfile",
    "DataVersion",
    "Finding",
    "Profile",
    "Report",
    "Run",
    "RunStatus",
    "Severity",
    "Status",
]

Severity = Literal["error", "warn"]
Status = Literal["pass", "fail", "skip"]
Scalar = float | int | str | bool | None

QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
"""Probabilities of the quantile sketch kept for numeric columns."""


@dataclass(frozen=True)
class ColumnProfile:
    """One column's summary: enough to run most checks and to compare versions."""

    name: str
    type: str
    kind: str
    count: int
    nulls: int
    distinct: int
    min: Scalar = None
    max: Scalar = None
    mean: float | None = None
    std: float | None = None
    quantiles: tuple[float, ...] = ()
    top: tuple[tuple[str, int], ...] = ()

    @property
    def null_rate(self) -> float:
        return self.nulls / self.count if self.count else 0.0

    @property
    def top_complete(self) -> bool:
        """Whether ``top`` lists every non-null value (so counts over it are exact)."""
        return bool(self.top) and sum(n for _, n in self.top) == self.count - self.nulls

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnProfile:
        values = dict(data)
        values["quantiles"] = tuple(values.get("quantiles", ()))
        values["top"] = tuple((str(v), int(n)) for v, n in values.get("top", ()))
        return cls(**values)


@dataclass(frozen=True)
class Profile:
    """A batch's profile: the row count and one summary per column, in column order."""

    rows: int
    columns: tuple[ColumnProfile, ...]

    def column(self, name: str) -> ColumnProfile | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def schema(self) -> dict[str, str]:
        return {c.name: c.type for c in self.columns}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        columns = tuple(ColumnProfile.from_dict(c) for c in data["columns"])
        return cls(rows=int(data["rows"]), columns=columns)


@dataclass(frozen=True)
class Finding:
    """The outcome of one check on one batch."""

    check: str
    kind: str
    severity: Severity
    status: Status
    message: str
    column: str | None = None
    violations: int = 0
    examples: tuple[dict[str, Any], ...] = ()

    @property
    def blocking(self) -> bool:
        return self.status == "fail" and self.severity == "error"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(**{**data, "examples": tuple(data.get("examples", ()))})


@dataclass(frozen=True)
class Report:
    """Every finding for one batch of one source; the batch passes without blocking ones."""

    source: str
    rows: int
    findings: tuple[Finding, ...] = ()
    reference: str | None = None

    @property
    def passed(self) -> bool:
        return not any(f.blocking for f in self.findings)

    @property
    def failures(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.status == "fail")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        findings = tuple(Finding.from_dict(f) for f in data.get("findings", ()))
        return cls(data["source"], int(data["rows"]), findings, data.get("reference"))


@dataclass(frozen=True)
class DataVersion:
    """An immutable, published batch of one source, named by the hash of its content.

    A retired version (``retired_reason`` set) stays in the catalog for lineage; readers
    that build on live data skip it.
    """

    id: str
    source: str
    artifact: str
    rows: int
    schema: dict[str, str]
    created_at: float
    profile: Profile | None = None
    watermark: str | None = None
    time_min: str | None = None
    time_max: str | None = None
    lineage: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    retired_at: float | None = None
    retired_reason: str | None = None

    @property
    def short(self) -> str:
        return self.id[:12]

    @property
    def live(self) -> bool:
        """Whether the version is still in use (not retired)."""
        return self.retired_reason is None


RunStatus = Literal["published", "already_ingested", "quarantined", "empty", "failed"]


@dataclass(frozen=True)
class Run:
    """One ingestion attempt of one source, whatever its outcome."""

    id: str
    source: str
    status: RunStatus
    started_at: float
    finished_at: float
    message: str
    version_id: str | None = None
    rows: int | None = None
    report: Report | None = None
    report_artifact: str | None = None
    quarantine_artifact: str | None = None
    lineage: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("published", "already_ingested", "empty")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["report"] = None if self.report is None else self.report.to_dict()
        return data
