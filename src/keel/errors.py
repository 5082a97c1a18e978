"""Every error Keel raises on purpose.

A ``KeelError`` is a user error: its message is one sentence that says what went wrong
and what to do about it, and the CLI prints it without a traceback. Anything else that
escapes is a bug.

    KeelError
    ├── ConfigError            keel.yaml is missing, malformed or invalid (``problems`` say where)
    │   └── ExpressionError    an expression in keel.yaml is outside its language (names where)
    ├── ProjectError           no project here, or the project folder is unusable
    ├── MissingExtraError      an optional dependency is not installed
    ├── StoreError             the metadata store cannot be used
    │   ├── StoreUnavailable   the database cannot be reached
    │   ├── StoreCorrupt       the database file is not a database
    │   └── LeaseHeld          another holder owns the named lease
    ├── ArtifactError          the artifact store cannot be used
    │   ├── ArtifactNotFound   no artifact with that digest
    │   ├── ArtifactCorrupt    the stored bytes do not match their digest
    │   └── ArtifactStoreUnavailable  the object store is unreachable, or refuses (bucket, access)
    ├── ExampleError           the example generator was asked for something it cannot do
    ├── FeatureError           a feature definition or lookup cannot be used
    │   └── OnlineStoreUnavailable  the online feature store cannot be reached
    ├── DataError              a source cannot be read or a data version cannot be found
    │   ├── SourceError        a source is misdeclared or its data cannot be read
    │   └── DataVersionNotFound  no data version matches the id
    ├── AuditError             the pilot to audit does not exist or cannot be listed
    ├── TrainingError          a training run cannot go ahead
    │   ├── TrainingDataError  the training data (or hard examples) is missing or unusable
    │   └── EstimatorError     the estimator cannot be found, built or fitted
    ├── RegistryError          the model registry cannot do what was asked
    │   ├── VersionNotFound    no model version matches the reference
    │   ├── DeployRefused      the version has no passing gate decision (use --force --reason)
    │   └── ModelLoadError     the model artifact cannot be loaded back
    ├── ServingError           the model server, its keys or its settings cannot do it
    │   └── SnapshotError      the snapshot to start from without the store is unusable
    ├── ClientError            a keel.Client call got no answer it can use
    │   ├── ServerUnreachable  no connection to the server, or no answer in time
    │   ├── UnexpectedResponse the answer is not the JSON a keel server sends (a proxy's page)
    │   └── ApiError           the server answered an error status; its message is kept
    │       ├── AuthError      401/403: the key is missing, unknown or lacks the scope
    │       ├── RateLimited    429, still after the retries: the key's rate limit is reached
    │       ├── ServiceUnavailable  503, still after the retries: nothing can answer now
    │       └── RequestRejected     400/405/408/413/415/422: the request must change
    │           └── InstanceRefused  validation refused every instance (``slots`` say why)
    ├── AlertError             an alert rule, sink or alert id is unusable
    ├── MonitoringError        the prediction log or a drift check cannot do what was asked
    ├── ComputeError           the compute engine (a Dask cluster) cannot run the job
    └── DashboardError         a dashboard action cannot go ahead (stale form, no reason)

A ``ConfigError`` about keel.yaml also lists its ``ConfigProblem``s: the file, line,
column and key of each, for ``keel config check --json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AlertError",
    "ApiError",
    "ArtifactCorrupt",
    "ArtifactError",
    "ArtifactNotFound",
    "ArtifactStoreUnavailable",
    "AuditError",
    "AuthError",
    "ClientError",
    "ComputeError",
    "ConfigError",
    "DashboardError",
    "DataError",
    "DataVersionNotFound",
    "DeployRefused",
    "EstimatorError",
    "ExampleError",
    "ExpressionError",
    "FeatureError",
    "InstanceRefused",
    "KeelError",
    "LeaseHeld",
    "MissingExtraError",
    "ModelLoadError",
    "MonitoringError",
    "OnlineStoreUnavailable",
    "ProjectError",
    "RateLimited",
    "RegistryError",
    "RequestRejected",
    "ServerUnreachable",
    "ServiceUnavailable",
    "ServingError",
    "SnapshotError",
    "SourceError",
    "StoreCorrupt",
    "StoreError",
    "StoreUnavailable",
    "TrainingDataError",
    "TrainingError",
    "UnexpectedResponse",
    "VersionNotFound",
]


class KeelError(Exception):
    """Root of every error Keel raises on purpose; the message is for the user."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a config file: its ``file``, ``line`` and ``column`` (from 1; None
    when the whole file is at fault), the dotted ``path`` of the key (None when the YAML
    itself is at fault), what is wrong (``message``) and, if known, what to do (``hint``).

    Printed as ``FILE:LINE:COLUMN: key.path: message; hint``.
    """

    file: str
    line: int | None
    column: int | None
    path: str | None
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        place = self.file if self.line is None else f"{self.file}:{self.line}:{self.column}"
        key = f"{self.path}: " if self.path else ""
        hint = f"; {self.hint}" if self.hint else ""
        return f"{place}: {key}{self.message}{hint}"


class ConfigError(KeelError):
    """keel.yaml is missing, malformed or does not match the schema.

    Raised on loading, it lists every ``problems`` in file order (its message is their
    lines). Raised later (a metric name only training knows), it names the ``key`` of
    keel.yaml it is about, with its ``reason`` and ``hint``, and
    ``keel.config.LoadedConfig.locate`` adds the file, line and column.
    """

    def __init__(
        self,
        message: str = "",
        *,
        problems: Sequence[ConfigProblem] = (),
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.problems = tuple(problems)
        self.key, self.reason, self.hint = key, message, hint
        if self.problems:
            message = "\n".join(map(str, self.problems))
        elif key is not None:
            message = f"{key}: {message}{f'; {hint}' if hint else ''}"
        super().__init__(message)


class ExpressionError(ConfigError):
    """An expression (data rule, alert or action condition, serving rule, gate threshold)
    is outside keel.yaml's expression language, or cannot be computed.

    ``text`` is the expression, ``column`` the 1-based column of the offending token in
    it, ``reason`` the sentence that says what to do, ``where`` the file, line and key
    when known.
    """

    def __init__(
        self, text: str, offset: int, reason: str, kind: str = "expression", where: str = ""
    ) -> None:
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}{kind} {text!r}, column {offset + 1}: {reason}")
        self.text, self.column, self.reason, self.kind, self.where = (
            text,
            offset + 1,
            reason,
            kind,
            where,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return ExpressionError, (self.text, self.column - 1, self.reason, self.kind, self.where)


class ProjectError(KeelError):
    """No project was found, or its folder cannot be used."""


class MissingExtraError(KeelError):
    """An optional dependency is needed; the message names the pip install that fixes it."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"this needs the '{module}' package: install it with pip install 'keel-ml[{extra}]'"
        )
        self.module = module
        self.extra = extra


class StoreError(KeelError):
    """The metadata store cannot be used."""


class StoreUnavailable(StoreError):
    """The database could not be reached."""


class StoreCorrupt(StoreError):
    """The database file exists but is not a usable database."""


class LeaseHeld(StoreError):
    """Another holder owns the named lease and it has not expired."""


class ArtifactError(KeelError):
    """The artifact store cannot be used."""


class ArtifactNotFound(ArtifactError):
    """No artifact with the requested digest exists."""


class ArtifactCorrupt(ArtifactError):
    """The stored bytes do not hash to the digest they are stored under."""


class ArtifactStoreUnavailable(ArtifactError):
    """The object store behind the artifact store cannot be reached, has no such bucket,
    or refuses the credentials (or has none): nothing was written, try again once fixed."""


class ExampleError(KeelError):
    """The example data generator was given options it cannot honour."""


class FeatureError(KeelError):
    """A feature definition is invalid, or features cannot be computed or looked up."""


class OnlineStoreUnavailable(FeatureError):
    """The online feature store cannot be reached; serving falls back."""


class DataError(KeelError):
    """The data layer cannot do what was asked."""


class SourceError(DataError):
    """A source is misdeclared, or its data cannot be read (after any retries)."""


class DataVersionNotFound(DataError):
    """No data version matches the given id or prefix."""


class AuditError(KeelError):
    """The path given to ``keel audit`` does not exist or cannot be listed."""


class TrainingError(KeelError):
    """A training run cannot go ahead."""


class TrainingDataError(TrainingError):
    """The training data, a data version or the hard-example file is missing or unusable."""


class EstimatorError(TrainingError):
    """The estimator or training function cannot be found, built or fitted."""


class RegistryError(KeelError):
    """The model registry cannot do what was asked."""


class VersionNotFound(RegistryError):
    """No registered model version matches the reference."""


class DeployRefused(RegistryError):
    """The version has no passing gate decision and the deploy was not forced."""


class ModelLoadError(RegistryError):
    """The model artifact's bytes are intact but do not load as a model."""


class MonitoringError(KeelError):
    """The prediction log or a drift check cannot do what was asked."""


class ComputeError(KeelError):
    """The compute engine cannot run the job: no scheduler answers, or workers keep dying."""


class AlertError(KeelError):
    """An alert rule, sink or alert id is unusable."""


class ServingError(KeelError):
    """The model server, its keys or its serving: settings cannot do what was asked."""


class SnapshotError(ServingError):
    """The store is down and the replica's snapshot cannot stand in for it (unreadable,
    another project's or store's, or its model bytes are missing)."""


class DashboardError(KeelError):
    """A dashboard action cannot go ahead: a stale form, a missing reason."""


class ClientError(KeelError):
    """A ``keel.Client`` call got no answer it can use."""


class ServerUnreachable(ClientError):
    """No connection to the server could be made, or it did not answer in time."""


class UnexpectedResponse(ClientError):
    """The answer is not the JSON a keel server sends (an HTML page from a proxy, say)."""


class ApiError(ClientError):
    """The server answered with an error status; ``message`` is the server's own words,
    ``detail`` its per-field detail (if any)."""

    def __init__(
        self,
        text: str,
        status: int,
        message: str,
        detail: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(text)
        self.status = status
        self.message = message
        self.detail = detail
        self.retry_after = retry_after


class AuthError(ApiError):
    """401 or 403: the API key is missing or unknown, or lacks the route's scope."""


class RateLimited(ApiError):
    """429 after the client's retries: the key's rate limit is reached (see retry_after)."""


class ServiceUnavailable(ApiError):
    """503 after the client's retries: no model can answer, or the store is unreachable."""


class RequestRejected(ApiError):
    """400, 405, 408, 413, 415 or 422: the request itself must change before it is sent again."""


class InstanceRefused(RequestRejected):
    """422: validation refused every instance; ``slots`` holds each one's errors."""

    def __init__(
        self, text: str, status: int, message: str, detail: Any = None, *, slots: Sequence[Any]
    ) -> None:
        super().__init__(text, status, message, detail)
        self.slots = slots
