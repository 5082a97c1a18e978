"""The schema of keel.yaml, one pydantic model per section.

Every section is optional. Unknown keys are refused (``extra="forbid"``) so a typo is an
error with a suggestion, never a silently ignored setting. Layers read their own section
and keep their vocabulary consistent with DESIGN.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

__all__ = [
    "AlertsConfig",
    "Duration",
    "FeaturesConfig",
    "GateConfig",
    "KeelConfig",
    "MonitoringConfig",
    "RolloutConfig",
    "ServingConfig",
    "SourceConfig",
    "TrainingConfig",
    "format_duration",
    "parse_duration",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> Any:
    """Accept ``90s``, ``10m``, ``1h``, ``2d``, ``1w`` or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"'{value}' is not a duration; write e.g. 30s, 10m, 1h or 2d")
        return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    return value


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling of a duration, e.g. ``2d`` or ``90s``."""
    seconds = value.total_seconds()
    for unit in ("w", "d", "h", "m", "s"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{round(seconds * 1000)}ms"


Duration = Annotated[
    timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)
]
Severity = Literal["error", "warn"]


class Section(BaseModel):
    """Base of every section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# -- data -------------------------------------------------------------------------------


class SourceConfig(Section):
    kind: Literal["csv", "parquet", "sql", "python"]
    path: str | None = None
    query: str | None = None
    url: str | None = None
    callable: str | None = None
    key: str | None = None
    timestamp: str | None = None
    watermark: str | None = None
    checks: dict[str, Any] = Field(default_factory=dict)


# -- features ---------------------------------------------------------------------------


class FeaturesConfig(Section):
    module: str = "features.py"
    online: str = "sqlite"


# -- training ---------------------------------------------------------------------------


class ModelSpec(Section):
    estimator: str | None = None
    function: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class SplitSpec(Section):
    by: Literal["random", "time"] = "random"
    test_size: float = Field(0.2, gt=0, lt=1)
    column: str | None = None


class TrainingConfig(Section):
    data: str = "latest"
    labels: str | None = None
    target: str | None = None
    features: list[str] = Field(default_factory=list)
    model: ModelSpec = Field(default_factory=ModelSpec)
    split: SplitSpec = Field(default_factory=SplitSpec)
    seed: int = 0
    metrics: list[str] = Field(default_factory=list)


class HardExamples(Section):
    file: str
    must_pass: bool = True


class SliceSpec(Section):
    column: str
    thresholds: dict[str, str] = Field(default_factory=dict)


class MaxDrop(Section):
    max_drop: float = Field(ge=0)


class GateConfig(Section):
    thresholds: dict[str, str] = Field(default_factory=dict)
    vs_production: dict[str, MaxDrop] = Field(default_factory=dict)
    hard_examples: HardExamples | None = None
    slices: SliceSpec | None = None
    latency_p99_ms: float | None = Field(None, gt=0)
    max_size_mb: float | None = Field(None, gt=0)


# -- serving ----------------------------------------------------------------------------


class CacheSpec(Section):
    ttl: Duration = timedelta(seconds=60)
    url: str | None = None


class ActionRule(Section):
    when: str
    say: str


class ServingConfig(Section):
    rate_limit: str | None = None
    cache: CacheSpec | None = None
    timeout_ms: float = Field(50, gt=0)
    fallback: list[Literal["cache", "rule", "none"]] = Field(default_factory=lambda: ["none"])
    rule: str | None = None
    actions: list[ActionRule] = Field(default_factory=list)
    max_body_kb: int = Field(1024, gt=0)


# -- monitoring and alerts --------------------------------------------------------------


class DriftSpec(Section):
    tests: list[Literal["ks", "chi2", "psi", "mmd"]] = Field(default_factory=lambda: ["ks", "chi2"])
    correction: Literal["holm", "bonferroni", "none"] = "holm"
    alpha: float = Field(0.01, gt=0, lt=1)


class BusinessMetric(Section):
    name: str
    outcome: str
    agg: Literal["sum", "mean", "count"] = "sum"


class PerformanceSpec(Section):
    label_delay: Duration = timedelta(days=30)
    business: list[BusinessMetric] = Field(default_factory=list)


class RetrainSpec(Section):
    on: list[Literal["drift", "performance"]] = Field(default_factory=list)
    cooldown: Duration = timedelta(days=1)


class MonitoringConfig(Section):
    window: Duration | dict[str, int] = timedelta(hours=1)
    drift: DriftSpec = Field(default_factory=DriftSpec)
    performance: PerformanceSpec = Field(default_factory=PerformanceSpec)
    retrain: RetrainSpec = Field(default_factory=RetrainSpec)


class AlertRule(Section):
    name: str
    when: str
    severity: Literal["critical", "warning", "info"] = "warning"


class AlertSink(Section):
    kind: Literal["slack", "webhook", "email", "log"]
    url: str | None = None
    smtp: str | None = None
    to: list[str] = Field(default_factory=list)
    severities: list[Literal["critical", "warning", "info"]] = Field(
        default_factory=lambda: ["critical", "warning"]
    )


class Contact(Section):
    name: str
    role: str | None = None
    reach: str | None = None


class AlertsConfig(Section):
    rules: list[AlertRule] = Field(default_factory=list)
    sinks: list[AlertSink] = Field(default_factory=list)
    contacts: list[Contact] = Field(default_factory=list)


# -- delivery ---------------------------------------------------------------------------


class ShadowSpec(Section):
    min_requests: int = Field(500, ge=1)
    min_agreement: float = Field(0.9, ge=0, le=1)


class HoldSpec(Section):
    min_requests: int = Field(200, ge=1)
    min_time: Duration = timedelta(minutes=10)


class GuardSpec(Section):
    max_error_rate: float = Field(0.01, ge=0, le=1)
    max_fallback_rate: float = Field(0.02, ge=0, le=1)
    max_latency_p99_ms: float = Field(50, gt=0)


class CanarySpec(Section):
    steps: list[int] = Field(default_factory=lambda: [5, 25, 50, 100])
    hold: HoldSpec = Field(default_factory=HoldSpec)
    guards: GuardSpec = Field(default_factory=GuardSpec)


class RolloutConfig(Section):
    shadow: ShadowSpec = Field(default_factory=ShadowSpec)
    canary: CanarySpec = Field(default_factory=CanarySpec)


# -- the whole file ---------------------------------------------------------------------


class KeelConfig(Section):
    name: str = "keel-project"
    store: str | None = None
    artifacts: str | None = None
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    features: FeaturesConfig | None = None
    training: TrainingConfig | None = None
    gate: GateConfig | None = None
    serving: ServingConfig | None = None
    monitoring: MonitoringConfig | None = None
    alerts: AlertsConfig | None = None
    rollout: RolloutConfig | None = None

    def referenced_files(self) -> Iterator[tuple[tuple[str | int, ...], str]]:
        """Local files the config names that must exist, with where each is named."""
        if self.features is not None:
            yield ("features", "module"), self.features.module
        if self.training is not None and self.training.labels is not None:
            yield ("training", "labels"), self.training.labels
        if self.gate is not None and self.gate.hard_examples is not None:
            yield ("gate", "hard_examples", "file"), self.gate.hard_examples.file
