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

    type: ColumnType | None = Field(
        None, examples=["int"], description="The type every value must have."
    )
    not_null: bool = Field(False, description="No value may be null.")
    unique: bool = Field(False, description="No value may appear twice in a batch.")
    max_null_rate: float | None = Field(
        None,
        ge=0,
        le=1,
        examples=[0.05],
        description="The largest share of null values allowed, 0 to 1.",
    )
    range: tuple[Bound, Bound] | None = Field(
        None,
        examples=[[0, 120]],
        description="Inclusive [low, high] bounds; null leaves a side open. Dates and "
        "timestamps are written as text.",
    )
    allowed: list[str | int | float | bool] | None = Field(
        None, examples=[["basic", "pro"]], description="The only values allowed."
    )
    regex: str | None = Field(
        None,
        examples=["^c_[0-9]+$"],
        description="A regular expression each value (as text) must match in full.",
    )
    not_future: bool = Field(
        False, description="No timestamp may be later than the time of the check."
    )
    freshness: Duration | None = Field(
        None,
        examples=["2d"],
        description="The newest timestamp may be at most this old when the batch is checked.",
    )
    severity: Severity = Field(
        "error",
        description="For every check on the column: error blocks the batch; warn publishes it "
        "and reports the failing rows.",
    )

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

    name: str = Field(examples=["adult"], description="The rule's name in reports and check names.")
    expr: str = Field(
        examples=["age >= 18"],
        description="A SQL expression over the row's columns that must be true.",
    )
    severity: Severity = Field(
        "error",
        description="error blocks the batch; warn publishes it and reports the failing rows.",
    )


class ReferenceCheck(Section):
    """Every non-null ``column`` value exists in ``to`` (``source.column``), in any of its
    live versions."""

    column: str = Field(
        examples=["customer_id"],
        description="The column whose values must exist in the other source.",
    )
    to: str = Field(
        pattern=r"^[A-Za-z_][\w-]*\.[A-Za-z_]\w*$",
        examples=["customers.customer_id"],
        description="Where they must exist: SOURCE.COLUMN.",
    )
    severity: Severity = Field(
        "error",
        description="error blocks the batch; warn publishes it and reports the failing rows.",
    )


class OrderedCheck(Section):
    """``by`` never decreases in arrival order, globally or within each ``within`` entity."""

    by: str = Field(
        examples=["updated_at"], description="The column that must never decrease in arrival order."
    )
    within: str | None = Field(
        None,
        examples=["customer_id"],
        description="An entity column: order is checked per entity instead of over the whole "
        "batch.",
    )
    severity: Severity = Field(
        "error",
        description="error blocks the batch; warn publishes it and reports the failing rows.",
    )


def _reference_shorthand(value: Any) -> Any:
    return {"against": value} if isinstance(value, str) else value


class StatisticsCheck(Section):
    """Compare the batch's profile with a reference version's (``previous`` or an id)."""

    against: str = Field(
        "previous",
        description="The version to compare with: previous (the last published one) or a "
        "version id.",
    )
    max_row_change: float | None = Field(
        None,
        ge=0,
        examples=[0.5],
        description="The largest relative change of the row count (0.5 is ±50%); unset: not "
        "checked.",
    )
    max_null_rate_change: float | None = Field(
        0.05,
        ge=0,
        le=1,
        description="The largest change of a column's null rate, as a share (0 to 1); null: not "
        "checked.",
    )
    max_cardinality_change: float | None = Field(
        None,
        ge=0,
        examples=[0.5],
        description="The largest relative change of a column's distinct values; unset: not "
        "checked.",
    )
    max_psi: float | None = Field(
        0.2,
        ge=0,
        description="The largest population stability index of a column's distribution; null: "
        "not checked.",
    )
    max_ks: float | None = Field(
        0.1,
        ge=0,
        le=1,
        description="The largest Kolmogorov-Smirnov distance of a numeric column (0 to 1); "
        "null: not checked.",
    )
    alpha: float = Field(
        0.01,
        gt=0,
        lt=1,
        description="Significance level: a change within sampling noise at this level is never "
        "reported, whatever the limits say.",
    )
    severity: Severity = Field("warn", description="warn reports a change; error blocks the batch.")


class ChecksConfig(Section):
    """A source's validation suite; ``error`` checks block the batch, ``warn`` ones report."""

    columns: dict[str, ColumnCheck] = Field(
        default_factory=dict,
        examples=[{"age": {"type": "int", "range": [0, 120]}}],
        description="Checks per column, by column name.",
    )
    rules: list[RuleCheck] = Field(default_factory=list, description="Row-level business rules.")
    references: list[ReferenceCheck] = Field(
        default_factory=list, description="Columns whose values must exist in another source."
    )
    ordered: OrderedCheck | None = Field(
        None, description="A column that must never decrease in arrival order."
    )
    reference: Annotated[
        StatisticsCheck | None,
        BeforeValidator(_reference_shorthand, json_schema_input_type=StatisticsCheck | str | None),
    ] = Field(
        None,
        examples=["previous"],
        description="Compare each batch's statistics with an earlier version's; a version id or "
        "previous is shorthand for {against: ...}.",
    )
    extra_columns: Literal["ignore", "warn", "error"] = Field(
        "warn",
        description="What a column the checks do not name does: ignore, warn, or error (blocks "
        "the batch).",
    )

    @model_validator(mode="after")
    def _rule_names_differ(self) -> ChecksConfig:
        names = [rule.name for rule in self.rules]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"rule names must differ; repeated: {', '.join(repeated)}")
        return self


class RetrySpec(Section):
    """Retries of transient source errors, with exponential backoff from ``backoff``."""

    attempts: int = Field(3, ge=1, le=20, description="Tries in all, the first included (1 to 20).")
    backoff: Duration = Field(
        timedelta(seconds=1),
        description="The wait before the second try; it doubles after each failure.",
    )


class SourceConfig(Section):
    """One source: files (``path``: file, folder, glob or fsspec URL), a SQL ``query`` on
    ``url``, or a ``callable`` (``file.py:function``) returning a pandas DataFrame.

    ``key`` (one column, or a list of columns for a composite key) is unique within a
    batch and across the source's live versions; ``key_policy`` says what a key published
    before means: ``reject`` (quarantine the batch), ``warn`` (publish with a warning) or
    ``upsert`` (publish: the rows update those keys).

    ``partitioned: true`` (Parquet only) makes the files one table, each file a partition:
    a version is a manifest of partition digests, and unchanged files are not read again."""

    kind: Literal["csv", "parquet", "sql", "python"] = Field(description="How the data is read.")
    path: str | None = Field(
        None,
        examples=["data/customers.csv"],
        description="csv and parquet: a file, folder, glob or fsspec URL (s3://...), relative "
        "to the project.",
    )
    partitioned: bool = Field(
        False,
        examples=[True],
        description="parquet: the files are one table, a file per partition; a version is a "
        "manifest of partition digests and unchanged files are not read again.",
    )
    query: str | None = Field(
        None, examples=["SELECT * FROM orders"], description="sql: the query that reads the data."
    )
    url: str | None = Field(
        None,
        examples=["postgresql://reader:${DB_PASSWORD}@db/shop"],
        description="sql: the SQLAlchemy URL of the database; ${VAR} keeps the password out of "
        "the file.",
    )
    callable: str | None = Field(
        None,
        examples=["loaders.py:load_orders"],
        description="python: file.py:function returning a pandas DataFrame.",
    )
    key: str | list[str] | None = Field(
        None,
        examples=["customer_id", ["carrier", "flight", "date"]],
        description="The column (or list of columns) that identifies a row: unique in a batch "
        "and across live versions.",
    )
    key_policy: Literal["reject", "warn", "upsert"] = Field(
        "reject",
        description="What a key published before means: reject (quarantine the batch), warn "
        "(publish with a warning) or upsert (the rows update those keys).",
    )
    timestamp: str | None = Field(
        None,
        examples=["updated_at"],
        description="The event-time column; each data version records its first and last time.",
    )
    watermark: str | None = Field(
        None,
        examples=["updated_at"],
        description="A column that only grows: each ingest reads only rows past the newest "
        "value already published.",
    )
    delimiter: str | None = Field(
        None,
        min_length=1,
        max_length=1,
        examples=[";"],
        description="csv: the field separator, one character; unset: a comma.",
    )
    encoding: Literal["utf-8", "utf-16", "latin-1"] | None = Field(
        None, description="csv: the file's text encoding; unset: utf-8."
    )
    retry: RetrySpec = Field(
        default_factory=RetrySpec,
        description="Retries of transient read errors (a network file system, a database "
        "restarting).",
    )
    checks: ChecksConfig = Field(
        default_factory=ChecksConfig,
        description="The validation suite every batch of this source must pass.",
    )

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
        if self.partitioned and self.kind != "parquet":
            raise ValueError("partitioned: true needs a parquet source (a folder or glob)")
        return self


# -- features ---------------------------------------------------------------------------


class FeaturesConfig(Section):
    module: str = Field(
        "features.py",
        description="The Python file that defines feature views and transforms, relative to the "
        "project.",
    )
    online: str = Field(
        "sqlite",
        examples=["redis://127.0.0.1:6379/0"],
        description="The online store: sqlite (under .keel), sqlite:///path, or "
        "redis://host:port/db.",
    )


# -- training ---------------------------------------------------------------------------


class ModelSpec(Section):
    """An estimator by import path (scikit-learn contract) or a ``train(X, y, params)``."""

    estimator: str | None = Field(
        None,
        examples=["sklearn.linear_model.LogisticRegression"],
        description="Import path of a scikit-learn compatible estimator class.",
    )
    function: str | None = Field(
        None,
        examples=["training:fit"],
        description="module:function called as train(X, y, params), returning a fitted model.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        examples=[{"max_iter": 500}],
        description="Keyword arguments for the estimator, or the params argument of the function.",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> ModelSpec:
        if (self.estimator is None) == (self.function is None):
            raise ValueError("name exactly one of estimator: (import path) or function: (mod:fn)")
        return self


class SplitSpec(Section):
    by: Literal["random", "time"] = Field(
        "random", description="random rows, or time (the newest rows, by column, are held out)."
    )
    test_size: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="The share of rows held out for evaluation and the gate (between 0 and 1).",
    )
    column: str | None = Field(
        None,
        examples=["signup_date"],
        description="by: time: the column that orders rows (required then); it is never trained "
        "on.",
    )


def _default_model() -> ModelSpec:
    return ModelSpec(estimator="sklearn.ensemble.HistGradientBoostingClassifier")


class TrainingConfig(Section):
    """``data`` is a CSV/Parquet path, ``module:function``, ``features``, a source's name
    (``SOURCE``, or ``SOURCE@VERSION`` for its data as of that version) or ``latest`` (the
    one declared source)."""

    data: str = Field(
        "latest",
        description="The training rows: a source's name (SOURCE or SOURCE@VERSION), latest (the "
        "one declared source), a CSV/Parquet path, module:function, or features.",
    )
    labels: str | None = Field(
        None,
        examples=["data/labels.csv"],
        description="data: features: the file of labels (entity keys, label time, target), "
        "relative to the project.",
    )
    label_time: str | None = Field(
        None,
        examples=["labelled_at"],
        description="data: features: the labels' event-time column; features are joined as of "
        "that time.",
    )
    target: str = Field("label", examples=["churned"], description="The column to predict.")
    features: list[str] = Field(
        default_factory=list,
        examples=[["age", "plan", "tickets_30d"]],
        description="The columns to train on; empty: every column but the target and excluded "
        "ones.",
    )
    exclude: list[str] = Field(
        default_factory=list,
        examples=[["customer_id"]],
        description="Columns never to train on (ids, leaks).",
    )
    model: ModelSpec = Field(default_factory=_default_model, description="What to train.")
    split: SplitSpec = Field(
        default_factory=SplitSpec, description="How rows are held out for evaluation."
    )
    seed: int = Field(
        0,
        description="The random seed: the same config, data and seed give a byte-identical model.",
    )
    sample: int | None = Field(
        None,
        ge=2,
        examples=[200000],
        description="compute.engine dask: estimators without a Dask interface (scikit-learn's) "
        "fit on at most this many training rows, drawn with the seed; unset: all of them.",
    )
    metrics: list[str] = Field(
        default_factory=lambda: ["roc_auc", "accuracy", "log_loss"],
        description="The metrics to record for each trained version.",
    )
    positive_class: str | bool | int | None = Field(
        None,
        examples=["churned"],
        description="The class binary metrics and scores are about; unset: the training labels' "
        "minority class.",
    )

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
    file: str = Field(
        examples=["data/hard_cases.csv"],
        description="A CSV/Parquet file of rows that matter, with their labels, relative to the "
        "project.",
    )
    must_pass: bool = Field(
        True, description="true: a drop beyond max_drop fails the gate; false: it is only reported."
    )
    metric: str = Field("accuracy", description="The metric computed on these rows.")
    max_drop: float = Field(
        0.0,
        ge=0,
        examples=[0.01],
        description="How far the metric may fall below production's on these rows, in the "
        "metric's units.",
    )


class SliceSpec(Section):
    """Per-value gates. A binary classifier's slice is judged only with ``min_positives``
    and ``min_negatives`` rows of each class (any other model's with ``min_rows``), and
    fails only when the whole ``confidence`` interval of its metric misses the threshold.
    """

    column: str = Field(examples=["region"], description="The column whose values are the slices.")
    thresholds: dict[str, str] = Field(
        default_factory=dict,
        examples=[{"roc_auc": ">= 0.75"}],
        description="Per metric, the comparison each slice must pass.",
    )
    min_rows: int = Field(
        20,
        ge=1,
        description="A non-binary model's slice is judged only with at least this many rows.",
    )
    min_positives: int = Field(
        10,
        ge=1,
        description="A binary classifier's slice is judged only with at least this many "
        "positive rows.",
    )
    min_negatives: int = Field(
        10,
        ge=1,
        description="A binary classifier's slice is judged only with at least this many "
        "negative rows.",
    )
    confidence: float = Field(
        0.95,
        gt=0,
        lt=1,
        description="The confidence level of the interval a slice's metric must miss to fail.",
    )


class MaxDrop(Section):
    max_drop: float = Field(
        ge=0,
        examples=[0.02],
        description="How far the candidate's metric may fall below production's, in the "
        "metric's units.",
    )


class BaselineSpec(Section):
    """Beat a trivial model fitted on the same split: DummyClassifier(strategy="prior")
    (most frequent class, class-prior probabilities) or DummyRegressor(strategy="mean").

    ``margin`` is in each metric's own units; ``metrics`` defaults to the gate's threshold
    and vs_production metrics, or every recorded metric when the gate names none.
    """

    margin: float = Field(
        0.005,
        ge=0,
        description="How much better than the trivial model the candidate must be, in each "
        "metric's units.",
    )
    metrics: list[str] | None = Field(
        None,
        examples=[["roc_auc"]],
        description="The metrics compared; unset: the gate's thresholds and vs_production "
        "metrics, else every recorded one.",
    )


def _switch(value: Any) -> Any:
    """``false`` turns a default-on section off; ``true`` keeps its defaults."""
    if value is False:
        return None
    return {} if value is True else value


class GateConfig(Section):
    thresholds: dict[str, str] = Field(
        default_factory=dict,
        examples=[{"roc_auc": ">= 0.8"}],
        description="Per metric, the comparison the candidate must pass.",
    )
    vs_production: dict[str, MaxDrop] = Field(
        default_factory=dict,
        examples=[{"roc_auc": {"max_drop": 0.02}}],
        description="Per metric, how far the candidate may fall below the production model.",
    )
    baseline: Annotated[
        BaselineSpec | None, BeforeValidator(_switch, json_schema_input_type=BaselineSpec | bool)
    ] = Field(
        default_factory=BaselineSpec,
        description="Beat a trivial model fitted on the same split; false turns it off.",
    )
    hard_examples: HardExamples | None = Field(
        None, description="Rows the model must keep getting right."
    )
    slices: SliceSpec | None = Field(
        None, description="Gates per value of a column (a region, a plan)."
    )
    latency_p99_ms: float | None = Field(
        None,
        gt=0,
        examples=[20],
        description=(
            "The largest 99th-percentile latency of one prediction, in milliseconds, timed "
            "on one thread over up to 100 calls; a round above it is timed again and the "
            "lower round counts, so one stall of the machine does not fail a model."
        ),
    )
    max_size_mb: float | None = Field(
        None, gt=0, examples=[200], description="The largest model artifact, in megabytes."
    )


# -- serving ----------------------------------------------------------------------------


class CacheSpec(Section):
    """The response cache: answers kept for ``ttl``, in process or in Redis (``url``)."""

    ttl: Duration = Field(timedelta(seconds=60), description="How long an answer is kept.")
    url: str | None = Field(
        None,
        examples=["redis://127.0.0.1:6379/1"],
        description="redis://... to share the cache between replicas; unset: in process.",
    )
    max_entries: int = Field(100_000, ge=1, description="The most answers kept in process.")


class MetricsPortSpec(Section):
    """``/metrics`` on a port of its own, without a key: what a Prometheus scrape reaches.

    The main port's ``/metrics`` still needs an admin key. Bind this port where only the
    scraper reaches it (a cluster network), never where the public does.
    """

    port: int = Field(ge=1, le=65535, description="The port for /metrics, e.g. 9100.")
    host: str = Field("127.0.0.1", description="The address to listen on, e.g. 0.0.0.0.")


class ActionRule(Section):
    when: str = Field(
        examples=["probability >= 0.7"],
        description="An expression over the answer (prediction, probability) and the row's "
        "features.",
    )
    say: str = Field(
        examples=["Call the customer today"],
        description="The action returned with answers for which when is true.",
    )


class BatchingSpec(Section):
    """Micro-batching: rows waiting while the model is busy go in one call."""

    max_batch: int = Field(64, ge=1, le=100_000, description="The most rows in one model call.")
    max_wait_ms: float = Field(
        1.0,
        ge=0,
        le=1000,
        description="The longest a row waits for others, in milliseconds; rows wait only while "
        "the model is busy.",
    )


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

    types: Literal["reject", "fallback"] = Field(
        "reject",
        description="A wrong type, a null or a missing field: reject the row, or let the "
        "fallback chain answer it.",
    )
    ranges: Policy = Field(
        "flag", description="A number outside the training range widened by range_margin."
    )
    range_margin: float = Field(
        0.1,
        ge=0,
        description="How far past the training range a number may be before it is a finding, as "
        "a share of the range.",
    )
    unseen_categories: Policy = Field("flag", description="A category training never saw.")
    extra_fields: Literal["reject", "ignore"] = Field(
        "reject",
        description="A field the model does not take: reject the request, or ignore the field.",
    )


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
        examples=[["10.0.0.0/8"]],
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


# serving.rule is ``module:function`` (a file in the project) or an expression over the input
FUNCTION_REF = re.compile(r"^(?P<module>[A-Za-z_][\w./-]*):(?P<name>[A-Za-z_]\w*)$")


class ServingConfig(Section):
    """The model server and its gateway (see keel.serving)."""

    rate_limit: str | None = Field(
        "100/second",
        description="Requests allowed per API key, e.g. 100/second or 5000/minute; a key may "
        "carry its own; null: no limit.",
    )
    rate_limit_url: str | None = Field(
        None,
        examples=["redis://127.0.0.1:6379/0"],
        description="redis://... to share rate limits between replicas; unset: per process.",
    )
    cache: CacheSpec | None = Field(None, description="Cache answers per request; unset: no cache.")
    timeout_ms: float = Field(
        50,
        gt=0,
        description="The per-request deadline in milliseconds; past it the fallback chain answers.",
    )
    fallback: list[Literal["cache", "rule", "none"]] = Field(
        ["none"],
        examples=[["cache", "rule", "none"]],
        description="What answers when the model cannot, tried in order: cache, rule, none (an "
        "error).",
    )
    rule: str | None = Field(
        None,
        examples=["features:churn_rule"],
        description="The fallback rule: module:function in the project, or an expression such "
        "as 1 if tickets_30d > 3 else 0.",
    )
    actions: list[ActionRule] = Field(
        default_factory=list,
        description="Actions returned with answers, the first whose when is true.",
    )
    max_body_kb: int = Field(
        1024, gt=0, description="The largest request body in kilobytes; larger gets 413."
    )
    max_instances: int = Field(
        1000, ge=1, description="The most rows in one request; more gets 413."
    )
    body_timeout: Duration = Field(
        timedelta(seconds=10), description="A client that takes longer to send its body gets 408."
    )
    header_timeout: Duration = Field(
        timedelta(seconds=10),
        description="A connection that has not sent a request's complete headers in this time "
        "is closed.",
    )
    keep_alive: Duration = Field(
        timedelta(seconds=75),
        description="Idle connections are closed after this; keep it longer than any client or "
        "load balancer in front, so they close first.",
    )
    drain: Duration = Field(
        timedelta(0),
        description="After SIGTERM, /readyz answers 503 this long while requests are still "
        "served, so load balancers take the replica out first.",
    )
    entity: str | None = Field(
        None,
        examples=["customer_id"],
        description="The request field naming the entity (e.g. customer_id): it routes canaries "
        "and keys the cache; unset: the first feature view's entity.",
    )
    explain: bool = Field(
        False,
        description="Explain every answer without being asked (explain=true per request does it "
        "for one).",
    )
    explain_top: int = Field(3, ge=1, description="The number of features an explanation names.")
    interval: float = Field(
        0.9,
        gt=0,
        lt=1,
        description="The coverage of regression prediction intervals (conformal), between 0 and 1.",
    )
    batching: BatchingSpec = Field(
        default_factory=BatchingSpec,
        description="Micro-batching of rows that wait while the model is busy.",
    )
    validation: ValidationSpec = Field(
        default_factory=ValidationSpec,
        description="What happens to a request row per kind of finding.",
    )
    unknown_entity: Literal["serve", "fallback", "reject"] = Field(
        "fallback",
        description="An entity no feature view has a row for: fallback (the chain answers), "
        "reject (the row is refused), or serve (scored with the stored features "
        "missing, listed in the response).",
    )
    reload_interval: Duration = Field(
        timedelta(milliseconds=500),
        description="How often replicas check the registry for a new model.",
    )
    keys_refresh: Duration = Field(
        timedelta(seconds=5),
        description="How soon running servers see API keys created or revoked.",
    )
    log_predictions: bool = Field(
        True, description="Write every answer to the prediction log (monitoring reads it)."
    )
    dashboard: bool = Field(
        True, description="Serve the web dashboard at /ui, behind its own key login."
    )
    proxy: ProxySpec | None = Field(
        None,
        description="Trusted reverse proxies in front (a TLS-terminating ingress); unset: none.",
    )
    metrics: MetricsPortSpec | None = Field(
        None,
        description="Serve /metrics (every worker's, summed) without a key on a port of its "
        "own, e.g. {port: 9100, host: 0.0.0.0}; the main port's /metrics needs an admin key.",
    )
    docs: Literal["public", "key"] = Field(
        "public",
        description="Who may read the API docs (/docs, /openapi.json): anyone (public), "
        "or only requests with a valid API key (key).",
    )
    log_fsync: bool = Field(
        False,
        description="fsync each prediction-log append: survives power loss, at a cost in "
        "latency; false survives a killed process.",
    )
    log_roll: Literal["worker", "ship", "server"] = Field(
        "worker",
        description="Who rolls the prediction log's spools into Parquet segments. worker: "
        "the server only seals its spool and a `keel worker` on the same disk rolls it. "
        "ship: the server copies each sealed spool file as it is (no decoding) to the "
        "artifact store under spools/<host>/ and deletes it once the copy is confirmed; a "
        "`keel worker` anywhere rolls the shipped files, each counted once (use this when the "
        "worker runs on another machine; throughput as with worker; while the store is down "
        "the spool stays on disk and is retried with backoff). server: the server rolls and "
        "uploads its own segments in process (no worker needed; costs about a quarter of "
        "the serving core at 4,000 predictions/s).",
    )
    log_seal_every: Duration = Field(
        timedelta(seconds=10),
        description="How often the server seals its spool so the worker can read it (or, "
        "with log_roll: ship, ships it).",
    )
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
    tests: list[Literal["ks", "chi2", "psi", "mmd"]] = Field(
        ["ks", "chi2"],
        description="The statistical tests run per column: ks (numbers), chi2 (categories), "
        "psi, mmd.",
    )
    correction: Literal["holm", "bonferroni", "fdr", "none"] = Field(
        "holm",
        description="Correction for testing many columns at once: holm, bonferroni, fdr "
        "(Benjamini-Hochberg) or none.",
    )
    alpha: float = Field(
        0.01,
        gt=0,
        lt=1,
        description="The significance level over all columns together: family-wise, or the "
        "false discovery rate with fdr.",
    )
    min_effect: dict[Literal["ks", "chi2", "psi", "mmd"], float] = Field(
        default_factory=dict,
        examples=[{"psi": 0.1}],
        description="Per test, the smallest effect reported as drift, however significant.",
    )
    column_min_effect: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict,
        examples=[{"humidity": 0.05}],
        description="Per column, the smallest effect reported as drift, in the column's own "
        "measure.",
    )
    bins: int = Field(
        100, ge=2, le=10_000, description="Quantile bins of a numeric column's sketch."
    )
    psi_bins: int = Field(10, ge=2, le=100, description="Bins of the population stability index.")
    max_categories: int = Field(
        50,
        ge=1,
        description="A text column with more distinct values than this (and than half its rows) "
        "is taken for an identifier and not tested.",
    )
    mmd_sample: int = Field(
        300, ge=10, le=5_000, description="Rows sampled from each side for the MMD test."
    )
    permutations: int = Field(200, ge=10, description="Permutations for the MMD test's p-value.")
    exclude: list[str] = Field(
        default_factory=list,
        examples=[["customer_id"]],
        description="Columns never tested for drift.",
    )


class BusinessMetric(Section):
    name: str = Field(
        examples=["saved_revenue"], description="The metric's name in reports and alert rules."
    )
    outcome: str = Field(examples=["revenue"], description="The feedback field it aggregates.")
    agg: Literal["sum", "mean", "count"] = Field("sum", description="How: sum, mean or count.")


class PerformanceSpec(Section):
    label_delay: Duration | None = Field(
        None,
        examples=["7d"],
        description="How long labels take to arrive; unset: the median delay of the labels so far.",
    )
    business: list[BusinessMetric] = Field(
        default_factory=list, description="Business metrics computed from feedback outcomes."
    )
    score: str | None = Field(
        None,
        examples=["probability"],
        description="The logged output realised metrics are computed from (e.g. probability); "
        "unset: no performance signals for alert rules.",
    )
    kind: Literal["classification", "regression"] = Field(
        "classification", description="classification or regression metrics."
    )


class RetrainSpec(Section):
    on: list[Literal["drift", "performance", "schedule", "volume"]] = Field(
        default_factory=list,
        examples=[["drift", "performance"]],
        description="What triggers a retrain: drift, performance (below floors), schedule "
        "(every), volume (min_new_rows).",
    )
    cooldown: Duration = Field(
        timedelta(days=1), description="The least time between two retrains."
    )
    every: Duration | None = Field(
        None, examples=["7d"], description="schedule: retrain this often."
    )
    min_new_rows: int | None = Field(
        None,
        ge=1,
        examples=[10000],
        description="volume: retrain once this many new rows are published.",
    )
    floors: dict[str, float] = Field(
        default_factory=dict,
        examples=[{"roc_auc": 0.7}],
        description="performance: per metric, the value below which the model is retrained.",
    )


class MonitoringConfig(Section):
    log: str | None = Field(
        None,
        examples=["/var/lib/keel/predictions"],
        description="The prediction log's folder, relative to the project; unset: "
        ".keel/predictions.",
    )
    reference: str | None = Field(
        None,
        examples=["model:production", "data:orders"],
        description="What traffic is compared with: model:VERSION (e.g. model:production: that "
        "model's training statistics), data:SOURCE or data:SOURCE@VERSION (a published data "
        "version's rows, its newest live one without @VERSION; the model's feature columns; "
        "a partitioned source's is sketched on compute.engine), or a data file relative to "
        "the project; unset: drift has no reference (keel drift --reference gives one).",
    )
    window: Duration | dict[str, int] = Field(
        timedelta(hours=1),
        examples=["1h", {"rows": 10000}],
        description="The traffic each cycle looks at: a duration, or {rows: N} for the last N "
        "rows.",
    )
    drift: DriftSpec = Field(default_factory=DriftSpec, description="How drift is tested.")
    performance: PerformanceSpec = Field(
        default_factory=PerformanceSpec, description="Realised performance from feedback labels."
    )
    retrain: RetrainSpec = Field(
        default_factory=RetrainSpec, description="When to retrain automatically."
    )


class AlertRule(Section):
    name: str = Field(examples=["drift"], description="The alert's name.")
    when: str = Field(
        examples=["drifted_features >= 3 or output_drift"],
        description="A condition over the cycle's signals, e.g. drifted_features >= 3 or "
        "output_drift.",
    )
    severity: Literal["critical", "warning", "info"] = Field(
        "warning", description="critical, warning or info: sinks choose by it."
    )
    runbook: str | None = Field(
        None,
        examples=["https://wiki.example.com/churn/drift"],
        description="A link or text telling the on-call engineer what to do.",
    )
    cooldown: Duration = Field(
        timedelta(hours=1),
        description="After the alert resolves, the rule does not open it again within this time.",
    )
    clear_after: int = Field(
        2, ge=1, description="Cycles in a row the condition must be false before the alert clears."
    )
    auto_resolve: bool = Field(
        True, description="Resolve the alert when it clears; false: a person resolves it."
    )


class AlertSink(Section):
    kind: Literal["slack", "webhook", "pagerduty", "email", "log"] = Field(
        description="Where alerts go."
    )
    name: str | None = Field(
        None,
        examples=["oncall-slack"],
        description="The sink's name in the alert history; unset: KIND-N (its kind and position).",
    )
    url: str | None = Field(
        None,
        examples=["${SLACK_WEBHOOK_URL}"],
        description="slack and webhook: the URL to post to; pagerduty: the events API URL.",
    )
    routing_key: str | None = Field(
        None,
        examples=["${PAGERDUTY_ROUTING_KEY}"],
        description="pagerduty: the integration's routing key.",
    )
    smtp: str | None = Field(
        None,
        examples=["smtp://mail.example.com:25"],
        description="email: the SMTP server, smtp://host:port.",
    )
    to: list[str] = Field(
        default_factory=list,
        examples=[["oncall@example.com"]],
        description="email: the recipients.",
    )
    severities: list[Literal["critical", "warning", "info"]] = Field(
        ["critical", "warning"], description="The severities this sink receives."
    )


class Contact(Section):
    name: str = Field(examples=["Churn team"], description="A person or team.")
    role: str | None = Field(
        None, examples=["model owner"], description="What they own, e.g. model owner or on-call."
    )
    reach: str | None = Field(
        None,
        examples=["#churn-model"],
        description="How to reach them: an address, a handle, a phone.",
    )


class AlertsConfig(Section):
    rules: list[AlertRule] = Field(
        default_factory=list, description="The alert rules, checked every monitoring cycle."
    )
    sinks: list[AlertSink] = Field(default_factory=list, description="Where notifications go.")
    contacts: list[Contact] = Field(
        default_factory=list, description="People listed in the runbook."
    )


# -- delivery ---------------------------------------------------------------------------


class ShadowSpec(Section):
    min_requests: int = Field(
        500, ge=1, description="Requests the shadow must answer before it is judged."
    )
    min_agreement: float = Field(
        0.9,
        ge=0,
        le=1,
        description="The least share of answers on which shadow and production agree (0 to 1).",
    )
    max_error_rate: float = Field(
        0.01, ge=0, le=1, description="The largest share of requests the shadow may fail (0 to 1)."
    )


class HoldSpec(Section):
    min_requests: int = Field(
        200, ge=1, description="Requests the canary must answer at a step before it advances."
    )
    min_time: Duration = Field(timedelta(minutes=10), description="The least time at each step.")


class GuardSpec(Section):
    max_error_rate: float = Field(
        0.01,
        ge=0,
        le=1,
        description="The canary is rolled back above this share of errors (0 to 1).",
    )
    max_fallback_rate: float = Field(
        0.02,
        ge=0,
        le=1,
        description="The canary is rolled back above this share of fallback answers (0 to 1).",
    )
    max_latency_p99_ms: float = Field(
        50,
        gt=0,
        description="The canary is rolled back above this 99th-percentile latency, in "
        "milliseconds, when it is also slower than production over the same step (a "
        "production as slow means the machine or the traffic is slow, not the canary).",
    )


class CanarySpec(Section):
    steps: list[int] = Field(
        default_factory=lambda: [1, 5, 25, 50, 100],
        description="The canary's traffic shares in percent, rising, ending at 100 (promotion).",
    )
    hold: HoldSpec = Field(
        default_factory=HoldSpec, description="How long the canary stays at each step."
    )
    guards: GuardSpec = Field(default_factory=GuardSpec, description="What rolls the canary back.")

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
    auto: bool = Field(
        True, description="A retrained candidate that passes the gate goes to shadow by itself."
    )
    shadow: ShadowSpec = Field(
        default_factory=ShadowSpec, description="When a shadow is good enough to become a canary."
    )
    canary: CanarySpec = Field(
        default_factory=CanarySpec, description="The canary's steps, holds and guards."
    )


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
        examples=["tcp://10.0.0.5:8786"],
    )
    workers: int = Field(
        2, ge=1, le=256, description="Worker processes of a local cluster started for a command."
    )
    partition_rows: int = Field(
        250_000,
        ge=1,
        description=(
            "At most this many rows in one partition; each file is one or more. On dask, "
            "keel drift and the monitoring cycle send a logged window to the cluster (one "
            "task per log segment) when it spans several segments and more rows than this; "
            "a smaller window is read in the command's process."
        ),
    )
    connect_timeout: Duration = Field(
        timedelta(seconds=5),
        description="How long to wait for the scheduler to answer before giving up.",
    )
    credentials: Literal["send", "workers"] = Field(
        "send",
        description=(
            "send: tasks that read the artifact store or score s3:// files carry storage:'s "
            "options, credentials included (the default); workers: only those that are not "
            "credentials (endpoint, region, retries), the workers using their own environment "
            "or instance role."
        ),
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
        examples=["http://minio.internal:9000"],
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
    name: str = Field(
        "keel-project", description="The project's name: labels metrics, snapshots and keys."
    )
    store: str | None = Field(
        None,
        examples=["postgresql://keel:${DB_PASSWORD}@db/keel"],
        description="The metadata store URL; unset: SQLite at .keel/keel.db. ${VAR} keeps the "
        "password out of the file.",
    )
    artifacts: str | None = Field(
        None,
        examples=["s3://models/churn"],
        description="Where artifacts (data versions, models) are kept: a folder or "
        "s3://bucket/prefix; unset: .keel/artifacts.",
    )
    storage: StorageConfig | None = Field(
        None, description="Object stores' client settings: S3's endpoint, region and keys."
    )
    sources: dict[str, SourceConfig] = Field(
        default_factory=dict, description="Data sources, by name."
    )
    features: FeaturesConfig | None = Field(None, description="The feature store.")
    training: TrainingConfig | None = Field(None, description="What to train and on what.")
    gate: GateConfig | None = Field(None, description="What a candidate must pass to be deployed.")
    serving: ServingConfig | None = Field(None, description="The model server and its gateway.")
    monitoring: MonitoringConfig | None = Field(
        None, description="Drift, performance and retraining."
    )
    alerts: AlertsConfig | None = Field(
        None, description="Alert rules, where notifications go, and who is on call."
    )
    rollout: RolloutConfig | None = Field(None, description="Shadow and canary deployment.")
    compute: ComputeConfig | None = Field(None, description="Where heavy data work runs.")

    def expressions(self) -> Iterator[tuple[tuple[str | int, ...], str, str]]:
        """Every expression the config holds: where it is, its text and its kind (the
        ``keel.expressions`` context that reads it)."""
        for name, source in self.sources.items():
            for index, rule in enumerate(source.checks.rules):
                yield ("sources", name, "checks", "rules", index, "expr"), rule.expr, "data rule"
        if self.serving is not None:
            for index, action in enumerate(self.serving.actions):
                yield ("serving", "actions", index, "when"), action.when, "action condition"
            text = self.serving.rule
            if text is not None and not FUNCTION_REF.match(text.strip()):
                yield ("serving", "rule"), text, "serving rule"
        for index, alert in enumerate(self.alerts.rules if self.alerts is not None else []):
            yield ("alerts", "rules", index, "when"), alert.when, "alert condition"
        gate = self.gate or GateConfig()
        for metric, threshold in gate.thresholds.items():
            yield ("gate", "thresholds", metric), threshold, "gate threshold"
        for metric, threshold in (gate.slices.thresholds if gate.slices else {}).items():
            yield ("gate", "slices", "thresholds", metric), threshold, "gate threshold"

    def referenced_files(self) -> Iterator[tuple[tuple[str | int, ...], str]]:
        """Local files the config names that must exist, with where each is named."""
        if self.features is not None:
            yield ("features", "module"), self.features.module
        if self.training is not None and self.training.labels is not None:
            yield ("training", "labels"), self.training.labels
        if self.gate is not None and self.gate.hard_examples is not None:
            yield ("gate", "hard_examples", "file"), self.gate.hard_examples.file
