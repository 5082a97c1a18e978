"""Registry values: a model version, a status change. Small frozen dataclasses."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["STATUSES", "ModelVersion", "StatusEvent"]

STATUSES = ("candidate", "shadow", "canary", "production", "archived")


@dataclass(frozen=True)
class ModelVersion:
    """One registered model: what it is, where it came from, and where it stands."""

    version: int
    name: str
    source: str
    status: str
    status_at: float
    created_at: float
    created_by: str
    artifact: str
    size_bytes: int
    config_hash: str
    data_ref: str
    data_rows: int
    data_start: str | None
    data_end: str | None
    metrics: dict[str, float | None]
    duration_s: float
    gate_passed: bool | None

    @classmethod
    def from_row(cls, row: Any) -> ModelVersion:
        values = dict(row._mapping)
        values["metrics"] = json.loads(values["metrics"])
        values["gate_passed"] = (
            None if values["gate_passed"] is None else bool(values["gate_passed"])
        )
        return cls(**values)

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StatusEvent:
    """One status transition: who moved which version from where to where, when and why."""

    version: int
    from_status: str | None
    to_status: str
    at: float
    actor: str
    reason: str
    forced: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
