"""The audit's values: a severity scale, one finding, the whole report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

__all__ = ["AuditReport", "Finding", "Severity"]


class Severity(StrEnum):
    """How soon a risk bites in production, from ``info`` (note) to ``high`` (breaks)."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


@dataclass(frozen=True)
class Finding:
    """One production risk at one place, with a one-line fix and the Keel feature for it.

    ``line`` is 1-based within the file, or within the notebook cell when ``cell`` (the
    1-based position of the cell in the notebook) is set; ``None`` means the whole file
    (or the whole pilot when ``file`` is ``"."``).
    """

    kind: str
    severity: Severity
    file: str
    line: int | None
    message: str
    fix: str
    keel_feature: str
    cell: int | None = None

    @property
    def location(self) -> str:
        place = self.file if self.cell is None else f"{self.file} cell {self.cell}"
        return place if self.line is None else f"{place}:{self.line}"

    def sort_key(self) -> tuple[int, str, int, int]:
        return (-self.severity.rank, self.file, self.cell or 0, self.line or 0)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "severity": self.severity.value, "location": self.location}


@dataclass(frozen=True)
class AuditReport:
    """What ``audit`` read under ``root`` and the risks it found, worst first."""

    root: str
    files: tuple[str, ...]
    findings: tuple[Finding, ...]

    def count(self, severity: Severity) -> int:
        return sum(1 for finding in self.findings if finding.severity is severity)

    def has_at_least(self, severity: Severity) -> bool:
        return any(finding.severity.at_least(severity) for finding in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "files": list(self.files),
            "counts": {severity.value: self.count(severity) for severity in Severity},
            "findings": [finding.to_dict() for finding in self.findings],
        }
