"""The schema of keel.yaml, one pydantic model per section.

Every section is optional. Unknown keys are refused (``extra="forbid"``) so a typo is an
error with a suggestion, never a silently ignored setting. Layers read their own section
and keep their vocabulary consistent with DESIGN.md.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    PlainSerializer,
    field_validator,
    model_validator,
)

__all__ = [
    "AlertsConfig",
    "ChecksConfig",
    "ColumnCheck",
    "ComputeConfig",
    "Duration",
    "FeaturesConfig",
    "GateConfig",
    "KeelConfig",
    "MonitoringConfig",
    "OrderedCheck",
    "ReferenceCheck",
    "RetrySpec",
    "RolloutConfig",
    "RuleCheck",
    "S3Storage",
    "ServingConfig",
    "SourceConfig",
    "StatisticsCheck",
    "StorageConfig",
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


ColumnType = Literal["string", "int", "float", "bool", "timestamp", "date", "category"]
Bound = float | str | None


class ColumnCheck(Section):
    """What one column must satisfy; ``severity`` applies to every check on the column."""

    type: ColumnType | None = None
    not_null: bool = False
    unique: bool = False
    max_null_rate: float | None = Field(None, ge=0, le=1)
    range: tuple[Bound, Bound] | None = None
    allowed: list[str | int | float | bool] | None = None
    regex: str | None = None
    not_future: bool = False
    freshness: Duration | None = None
    severity: Severity = "error"

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"'{value}' is not a valid regular expression ({error})") from None
        return value


class RuleCheck(Section):
    """A row-level business rule: every row must make ``expr`` true (NULL counts as true)."""

    name: str
    expr: str
    severity: Severity = "error"


class ReferenceCheck(Section):
    """Every non-null ``column`` value exists in ``to`` (``source.column``), in any of its
    live versions."""

    column: str
    to: str = Field(pattern=r"^[A-Za-z_][\w-]*\.[A-Za-z_]\w*$")
    severity: Severity = "error"


class OrderedCheck(Section):
    """``by`` never decreases in arrival order, globally or within each ``within`` entity."""

    by: str
    within: str | None = None
    severity: Severity = "error"


def _reference_shorthand(value: Any) -> Any:
    return {"against": value} if isinstance(value, str) else value


class StatisticsCheck(Section):
    """Compare the batch's profile with a reference version's (``previous`` or an id)."""

    against: str = "previous"
    max_row_change: float | None = Field(None, ge=0)
    max_null_rate_change: float | None = Field(0.05, ge=0, le=1)
    max_cardinality_change: float | None = Field(None, ge=0)
    max_psi: float | None = Field(0.2, ge=0)
    max_ks: float | None = Field(0.1, ge=0, le=1)
    alpha: float = Field(0.01, gt=0, lt=1)
    severity: Severity = "warn"


class ChecksConfig(Section):
    """A source's validation suite; ``error`` checks block the batch, ``warn`` ones report."""

    columns: dict[str, ColumnCheck] = Field(default_factory=dict)
    rules: list[RuleCheck] = Field(default_factory=list)
    references: list[ReferenceCheck] = Field(default_factory=list)
    ordered: OrderedCheck | None = None
    reference: Annotated[StatisticsCheck | None, BeforeValidator(_reference_shorthand)] = None
    extra_columns: Literal["ignore", "warn", "error"] = "warn"

    @model_validator(mode="after")
    def _rule_names_differ(self) -> ChecksConfig:
        names = [rule.name for rule in self.rules]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"rule names must differ; repeated: {', '.join(repeated)}")
        return self


class RetrySpec(Section):
    """Retries of transient source errors, with exponential backoff from ``backoff``."""

    attempts: int = Field(3, ge=1, le=20)
    backoff: Duration = timedelta(seconds=1)


class SourceConfig(Section):
    """One source: files (``path``: file, folder, glob or fsspec URL), a SQL ``query`` on
    ``url``, or a ``callable`` (``file.py:function``) returning a pandas DataFrame.

    ``key`` (one column, or a list of columns for a composite key) is unique within a
    batch and across the source's live versions; ``key_policy`` says what a key published
    before means: ``reject`` (quarantine the batch), ``warn`` (publish with a warning) or
    ``upsert`` (publish: the rows update those keys)."""

    kind: Literal["csv", "parquet", "sql", "python"]
    path: str | None = None
    query: str | None = None
    url: str | None = None
    callable: str | None = None
    key: str | list[str] | None = None
    key_policy: Literal["reject", "warn", "upsert"] = "reject"
    timestamp: str | None = None
    watermark: str | None = None
    delimiter: str | None = Field(None, min_length=1, max_length=1)
    encoding: Literal["utf-8", "utf-16", "latin-1"] | None = None
    retry: RetrySpec = Field(default_factory=RetrySpec)
    checks: ChecksConfig = Field(default_factory=ChecksConfig)

    @property
    def keys(self) -> tuple[str, ...]:
        """The key's columns: one for a single key, several for a composite key, or none."""
        if self.key is None:
            return ()
        return (self.key,) if isinstance(self.key, str) else tuple(self.key)

    @property
    def key_name(self) -> str | None:
        """The key as named in check names: ``customer_id`` or ``carrier+flight+date``."""
        return "+".join(self.keys) or None

    @field_validator("key")
    @classmethod
    def _key_columns(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list):
            if not value or not all(value):
                raise ValueError("a composite key lists one or more column names")
            repeated = sorted({name for name in value if value.count(name) > 1})
            if repeated:
                raise ValueError(f"key columns must differ; repeated: {', '.join(repeated)}")
        elif value == "":
            raise ValueError("key names a column")
        return value

    @model_validator(mode="after")
    def _has_location(self) -> SourceConfig:
        needed = {"csv": "path", "parquet": "path", "sql": "query", "python": "callable"}[self.kind]
        if getattr(self, needed) is None:
            raise ValueError(f"a {self.kind} source needs '{needed}:'")
        if self.kind == "sql" and self.url is None:
            raise ValueError("a sql source needs 'url:' (a SQLAlchemy database URL)")
        return self


# -- features ---------------------------------------------------------------------------


class FeaturesConfig(Section):
    module: str = "features.py"
    online: str = "sqlite"


# -- training ---------------------------------------------------------------------------


class ModelSpec(Section):
    """An estimator by import path (scikit-learn contract) or a ``train(X, y, params)``."""

    estimator: str | None = None
    function: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> ModelSpec:
        if (self.estimator is None) == (self.function is None):
            raise ValueError("name exactly one of estimator: (import path) or function: (mod:fn)")
        return self


class SplitSpec(Section):
    by: Literal["random", "time"] = "random"
    test_size: float = Field(0.2, gt=0, lt=1)
    column: str | None = None


def _default_model() -> ModelSpec:
    return ModelSpec(estimator="sklearn.ensemble.HistGradientBoostingClassifier")


class TrainingConfig(Section):
    """``data`` is a CSV/Parquet path, ``module:function``, ``features``, a source's name
    (``SOURCE``, or ``SOURCE@VERSION`` for its data as of that version) or ``latest`` (the
    one declared source)."""

    data: str = "latest"
    labels: str | None = None
    label_time: str | None = None  # the labels' event-time column, for data: features
    target: str = "label"
    features: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    model: ModelSpec = Field(default_factory=_default_model)
    split: SplitSpec = Field(default_factory=SplitSpec)
    seed: int = 0
    metrics: list[str] = Field(default_factory=lambda: ["roc_auc", "accuracy", "log_loss"])
    # The class binary metrics and scores are about; default: the training labels' minority
    positive_class: str | bool | int | None = None

    @staticmethod
    def source_named(spec: str) -> tuple[str, str | None] | None:
        """(source, version prefix or None) when ``spec`` names a source, else None.

        A file path (a ``/`` or a table suffix), ``module:function``, ``features`` and
        ``latest`` name no source by themselves.
        """
        if spec in ("features", "latest") or "/" in spec or ":" in spec:
            return None
        if spec.lower().endswith((".csv", ".parquet", ".pq")):
            return None
        source, _, version = spec.partition("@")
        return source, version or None


class HardExamples(Section):
    file: str
    must_pass: bool = True
    metric: str = "accuracy"
    max_drop: float = Field(0.0, ge=0)


class SliceSpec(Section):
    """Per-value gates. A binary classifier's slice is judged only with ``min_positives``
    and ``min_negatives`` rows of each class (any other model's with ``min_rows``), and
    fails only when the whole ``confidence`` interval of its metric misses the threshold.
    """

    column: str
    thresholds: dict[str, str] = Field(default_factory=dict)
    min_rows: int = Field(20, ge=1)
    min_positives: int = Field(10, ge=1)
    min_negatives: int = Field(10, ge=1)
    confidence: float = Field(0.95, gt=0, lt=1)


class MaxDrop(Section):
    max_drop: float = Field(ge=0)


class BaselineSpec(Section):
    """Beat a trivial model fitted on the same split: DummyClassifier(strategy="prior")
    (most frequent class, class-prior probabilities) or DummyRegressor(strategy="mean").

    ``margin`` is in each metric's own units; ``metrics`` defaults to the gate's threshold
    and vs_production metrics, or every recorded metric when the gate names none.
    """

    margin: float = Field(0.005, ge=0)
    metrics: list[str] | None = None


def _switch(value: Any) -> Any:
    """``false`` turns a default-on section off; ``true`` keeps its defaults."""
    if value is False:
        return None
    return {} if value is True else value


class GateConfig(Section):
    thresholds: dict[str, str] = Field(default_factory=dict)
    vs_production: dict[str, MaxDrop] = Field(default_factory=dict)
    baseline: Annotated[BaselineSpec | None, BeforeValidator(_switch)] = Field(
        default_factory=BaselineSpec
    )
    hard_examples: HardExamples | None = None
    slices: SliceSpec | None = None
    latency_p99_ms: float | None = Field(None, gt=0)
    max_size_mb: float | None = Field(None, gt=0)


# -- serving ----------------------------------------------------------------------------


class CacheSpec(Section):
    """The response cache: answers kept for ``ttl``, in process or in Redis (``url``)."""

    ttl: Duration = timedelta(seconds=60)
    url: str | None = None
    max_entries: int = Field(100_000, ge=1)


class ActionRule(Section):
    when: str
    say: str


class BatchingSpec(Section):
    """Micro-batching: rows waiting while the model is busy go in one call."""

    max_batch: int = Field(64, ge=1, le=100_000)
    max_wait_ms: float = Field(1.0, ge=0, le=1000)


_OLD_POLICIES = {"ignore": "flag", "allow": "flag"}  # earlier values, answered as before


def _policy_value(value: Any) -> Any:
    """``ranges: ignore`` and ``unseen_categories: allow`` (the earlier values) answer the
    row as they always did, now with the finding marked: they read as ``flag``."""
    return _OLD_POLICIES.get(value, value) if isinstance(value, str) else value


Policy = Annotated[Literal["reject", "flag", "fallback"], BeforeValidator(_policy_value)]


class ValidationSpec(Section):
    """What happens to a request row per kind of finding (see keel.serving.validation).

    ``reject``: the row gets its errors instead of a prediction (HTTP 422 when every row
    of the request is rejected); ``flag``: the model answers and the response and the log
    carry the finding; ``fallback``: the fallback chain answers the row, not the model.
    """

    types: Literal["reject", "fallback"] = "reject"  # wrong type, null, missing field
    ranges: Policy = "flag"  # outside the training range widened by range_margin
    range_margin: float = Field(0.1, ge=0)
    unseen_categories: Policy = "flag"  # a category training never saw
    extra_fields: Literal["reject", "ignore"] = "reject"


class ProxySpec(Section):
    """The reverse proxies in front of the server whose forwarded headers are believed.

    Behind a TLS-terminating ingress, the scheme (and client address) the browser used
    comes from the headers the proxy sets; without this the dashboard sees http and
    refuses logins sent from its https page. Requests from any other address keep what
    the connection says: a forged header from outside changes nothing.
    """

    trusted: list[IPvAnyNetwork] = Field(
        min_length=1,
        description="Addresses or CIDRs of the proxies, e.g. [10.0.0.0/8, 127.0.0.1].",
    )
    headers: Literal["forwarded", "x-forwarded"] = Field(
        "x-forwarded",
        description="Which headers they set: x-forwarded (X-Forwarded-Proto and "
        "X-Forwarded-For) or forwarded (RFC 7239 Forwarded).",
    )

    @field_validator("trusted", mode="before")
    @classmethod
    def _addresses(cls, value: Any) -> Any:
        return [_network(item) for item in value] if isinstance(value, list) else value


def _network(item: Any) -> Any:
    """An address or CIDR as given, or a sentence saying how to write it."""
    import ipaddress

    try:
        ipaddress.ip_network(str(item))
        return item
    except ValueError:
        pass
    try:
        network = ipaddress.ip_network(str(item), strict=False)
    except ValueError:
        raise ValueError(f"'{item}' is not an address or CIDR; write e.g. 10.0.0.0/8") from None
    raise ValueError(f"'{item}' has bits set past its prefix; write {network}")


class ServingConfig(Section):
    """The model server and its gateway (see keel.serving)."""

    rate_limit: str | None = "100/second"
    rate_limit_url: str | None = None
    cache: CacheSpec | None = None
    timeout_ms: float = Field(50, gt=0)
    fallback: list[Literal["cache", "rule", "none"]] = ["none"]
    rule: str | None = None
    actions: list[ActionRule] = Field(default_factory=list)
    max_body_kb: int = Field(1024, gt=0)
    max_instances: int = Field(1000, ge=1)
    body_timeout: Duration = timedelta(seconds=10)
    # a connection that has not sent a request's complete headers in this time is closed
    header_timeout: Duration = timedelta(seconds=10)
    # longer than a client or load balancer in front keeps an idle connection, so they
    # close it first: a server that closes first races the client's next request
    keep_alive: Duration = timedelta(seconds=75)
    # after SIGTERM, /readyz answers 503 this long while requests are still served, so a
    # load balancer's health checks take the replica out before its port closes
    drain: Duration = timedelta(0)
    entity: str | None = None
    explain: bool = False
    explain_top: int = Field(3, ge=1)
    interval: float = Field(0.9, gt=0, lt=1)
    batching: BatchingSpec = Field(default_factory=BatchingSpec)
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    # an entity no feature view has a row for (unknown, or the store never materialized):
    # fallback: the fallback chain answers; reject: the row is refused; serve: the model
    # scores it with every stored feature missing (the response lists them)
    unknown_entity: Literal["serve", "fallback", "reject"] = "fallback"
    reload_interval: Duration = timedelta(milliseconds=500)  # how fast replicas see a change
    keys_refresh: Duration = timedelta(seconds=5)
    log_predictions: bool = True
    dashboard: bool = True  # the web dashboard at /ui, behind its own key login
    proxy: ProxySpec | None = None  # trusted proxies in front (TLS-terminating ingress)
    docs: Literal["public", "key"] = Field(
        "public",
        description="who may read the API docs (/docs, /openapi.json): anyone (public), "
        "or only requests with a valid API key (key)",
    )
    log_fsync: bool = False
    log_roll: Literal["worker", "server"] = "worker"
    log_seal_every: Duration = timedelta(seconds=10)
    log_format: Literal["text", "json"] = Field(
        "text",
        description=(
            "text: uvicorn's lines, warnings only. json: one JSON object per line on stderr, "
            "an access line per request, and each line logged for a request carries its "
            "request_id (its X-Request-ID, returned in the response)."
        ),
    )

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit_parses(cls, value: str | None) -> str | None:
        if value is not None:
            from limits import parse

            try:
                parse(value)
            except ValueError:
                raise ValueError(f"'{value}' is not a rate limit; write e.g. 100/second") from None
        return value

    @field_validator("header_timeout")
    @classmethod
    def _header_timeout_positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s (the time to send request headers), e.g. 10s")
        return value


# -- monitoring and alerts --------------------------------------------------------------


class DriftSpec(Section):
    tests: list[Literal["ks", "chi2", "psi", "mmd"]] = ["ks", "chi2"]
    correction: Literal["holm", "bonferroni", "fdr", "none"] = "holm"
    alpha: float = Field(0.01, gt=0, lt=1)
    min_effect: dict[Literal["ks", "chi2", "psi", "mmd"], float] = Field(default_factory=dict)
    # the effect gate of single columns, in the column's own measure: {humidity: 0.05}
    column_min_effect: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    bins: int = Field(100, ge=2, le=10_000)
    psi_bins: int = Field(10, ge=2, le=100)
    max_categories: int = Field(50, ge=1)
    mmd_sample: int = Field(300, ge=10, le=5_000)
    permutations: int = Field(200, ge=10)
    exclude: list[str] = Field(default_factory=list)


class BusinessMetric(Section):
    name: str
    outcome: str
    agg: Literal["sum", "mean", "count"] = "sum"


class PerformanceSpec(Section):
    label_delay: Duration | None = None  # None: the median delay of the labels so far
    business: list[BusinessMetric] = Field(default_factory=list)
    score: str | None = None
    kind: Literal["classification", "regression"] = "classification"


class RetrainSpec(Section):
    on: list[Literal["drift", "performance", "schedule", "volume"]] = Field(default_factory=list)
    cooldown: Duration = timedelta(days=1)
    every: Duration | None = None
    min_new_rows: int | None = Field(None, ge=1)
    floors: dict[str, float] = Field(default_factory=dict)


class MonitoringConfig(Section):
    log: str | None = None
    reference: str | None = None
    window: Duration | dict[str, int] = timedelta(hours=1)
    drift: DriftSpec = Field(default_factory=DriftSpec)
    performance: PerformanceSpec = Field(default_factory=PerformanceSpec)
    retrain: RetrainSpec = Field(default_factory=RetrainSpec)


class AlertRule(Section):
    name: str
    when: str
    severity: Literal["critical", "warning", "info"] = "warning"
    runbook: str | None = None
    cooldown: Duration = timedelta(hours=1)
    clear_after: int = Field(2, ge=1)
    auto_resolve: bool = True


class AlertSink(Section):
    kind: Literal["slack", "webhook", "pagerduty", "email", "log"]
    name: str | None = None
    url: str | None = None
    routing_key: str | None = None
    smtp: str | None = None
    to: list[str] = Field(default_factory=list)
    severities: list[Literal["critical", "warning", "info"]] = ["critical", "warning"]


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
    max_error_rate: float = Field(0.01, ge=0, le=1)


class HoldSpec(Section):
    min_requests: int = Field(200, ge=1)
    min_time: Duration = timedelta(minutes=10)


class GuardSpec(Section):
    max_error_rate: float = Field(0.01, ge=0, le=1)
    max_fallback_rate: float = Field(0.02, ge=0, le=1)
    max_latency_p99_ms: float = Field(50, gt=0)


class CanarySpec(Section):
    steps: list[int] = Field(default_factory=lambda: [1, 5, 25, 50, 100])
    hold: HoldSpec = Field(default_factory=HoldSpec)
    guards: GuardSpec = Field(default_factory=GuardSpec)

    @field_validator("steps")
    @classmethod
    def _rising_to_100(cls, steps: list[int]) -> list[int]:
        """Traffic shares in percent, each bigger than the last, ending at 100."""
        if not steps or steps[-1] != 100:
            raise ValueError("canary steps must end at 100 (the share at promotion)")
        if steps[0] <= 0 or any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError("canary steps must be percentages rising from above 0 to 100")
        return steps


class RolloutConfig(Section):
    auto: bool = True  # a retrained candidate that passes the gate goes to shadow by itself
    shadow: ShadowSpec = Field(default_factory=ShadowSpec)
    canary: CanarySpec = Field(default_factory=CanarySpec)


# -- compute ---------------------------------------------------------------------------


class ComputeConfig(Section):
    """Where heavy data work runs: in this process (``local``) or on a Dask cluster."""

    engine: Literal["local", "dask"] = Field(
        "local",
        description="local: this process, in pandas chunks (the default); dask: a Dask cluster.",
    )
    address: str | None = Field(
        None,
        pattern=r"^(tcp|tls)://\S+$",
        description=(
            "The Dask scheduler, e.g. tcp://10.0.0.5:8786. Unset: $KEEL_DASK_ADDRESS, else a "
            "local cluster started for the command and stopped after it."
        ),
    )
    workers: int = Field(
        2, ge=1, le=256, description="Worker processes of a local cluster started for a command."
    )
    partition_rows: int = Field(
        250_000,
        ge=1,
        description="At most this many rows in one partition; each file is one or more.",
    )
    connect_timeout: Duration = Field(
        timedelta(seconds=5),
        description="How long to wait for the scheduler to answer before giving up.",
    )


# -- object storage --------------------------------------------------------------------


class S3Storage(Section):
    """How to reach S3 (or an S3-compatible server) for artifacts, sources and the
    prediction log's segments. Unset values come from the standard AWS environment, as
    before; a value here wins over it. The access key's secret and a session token must
    come from the environment (``${VAR}``), never from the file itself."""

    endpoint_url: str | None = Field(
        None,
        pattern=r"^https?://\S+$",
        description="An S3-compatible server, e.g. http://minio.internal:9000 (unset: AWS).",
    )
    region: str | None = Field(None, description="The bucket's region, e.g. eu-west-1.")
    key: str | None = Field(None, description="The access key id, e.g. ${S3_ACCESS_KEY}.")
    secret: str | None = Field(None, description="Its secret, as ${VAR} only.")
    token: str | None = Field(None, description="A session token, as ${VAR} only.")
    profile: str | None = Field(None, description="A profile of the AWS credentials file.")
    max_attempts: int | None = Field(
        None, ge=1, le=20, description="Attempts per S3 call before it fails (AWS default: 3)."
    )
    connect_timeout: Duration | None = Field(None, description="Per connection attempt.")
    read_timeout: Duration | None = Field(None, description="Per read from a connection.")
    addressing_style: Literal["auto", "path", "virtual"] | None = Field(
        None, description="path for servers that take the bucket in the path, not the host."
    )

    @model_validator(mode="after")
    def _key_pairs(self) -> S3Storage:
        if (self.key is None) != (self.secret is None):
            given, other = ("key", "secret") if self.secret is None else ("secret", "key")
            raise ValueError(f"{given} is set without {other}; set both or neither")
        if self.profile is not None and self.key is not None:
            raise ValueError("set either profile or key and secret, not both")
        return self


class StorageConfig(Section):
    """Object stores' client settings, by protocol."""

    s3: S3Storage | None = Field(
        None, description="S3 or an S3-compatible server (MinIO, SeaweedFS, Ceph)."
    )


# -- the whole file ---------------------------------------------------------------------


class KeelConfig(Section):
    name: str = "keel-project"
    store: str | None = None
    artifacts: str | None = None
    storage: StorageConfig | None = Field(
        None, description="Object stores' client settings: S3's endpoint, region and keys."
    )
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    features: FeaturesConfig | None = None
    training: TrainingConfig | None = None
    gate: GateConfig | None = None
    serving: ServingConfig | None = None
    monitoring: MonitoringConfig | None = None
    alerts: AlertsConfig | None = None
    rollout: RolloutConfig | None = None
    compute: ComputeConfig | None = None

    def referenced_files(self) -> Iterator[tuple[tuple[str | int, ...], str]]:
        """Local files the config names that must exist, with where each is named."""
        if self.features is not None:
            yield ("features", "module"), self.features.module
        if self.training is not None and self.training.labels is not None:
            yield ("training", "labels"), self.training.labels
        if self.gate is not None and self.gate.hard_examples is not None:
            yield ("gate", "hard_examples", "file"), self.gate.hard_examples.file
