"""``keel train``: one config in, one registered, gated, reproducible model version out.

The steps, each a small function: resolve the frame, choose feature columns, split, fit
(seeded), serialise deterministically, score the held-out rows, compute metrics,
calibration, reference statistics and the input schema, store the artifact and the
held-out rows, register the version with its full run record, then run the gate.
Only one training run per project at a time (a lease); a second one is told so.

A booster with ``compute.engine: dask`` trained on a partitioned source runs the same
steps with its rows left on the Dask workers
(``keel.training.workers`` says what comes back here); the run record's ``compute``
says ``"rows_on": "workers"``.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.errors import TrainingDataError
from keel.schema import GateConfig, TrainingConfig
from keel.training import provenance
from keel.training.artifact import dump_bundle, make_bundle
from keel.training.classes import ModelClasses
from keel.training.data import (
    TrainingFrame,
    WorkerRows,
    missing_labels,
    resolve_training_frame,
    rows_on_workers,
)
from keel.training.estimators import fit_baseline, fit_model
from keel.training.gate import GateDecision
from keel.training.gating import run_gate
from keel.training.inputs import infer_schema, prepare
from keel.training.record import model_summary, registry_row, store_frame
from keel.training.registry import Registry
from keel.training.split import as_times, random_split, time_split
from keel.training.versions import ModelVersion

if TYPE_CHECKING:
    import pandas as pd

    from keel.project import Project

__all__ = ["TrainResult", "feature_columns", "train"]


@dataclass(frozen=True)
class TrainResult:
    """The registered version, its classes and, if a gate policy exists, its decision."""

    version: ModelVersion
    decision: GateDecision | None
    classes: ModelClasses | None = None


def train(
    project: Project, config: TrainingConfig | None = None, gate: GateConfig | None = None
) -> TrainResult:
    """Train, register and gate one model version of ``project``; a ``ConfigError`` about
    keel.yaml's training: section names its line (not when ``config`` came from elsewhere)."""
    located: AbstractContextManager[None] = (
        project.loaded.locating() if config is None else nullcontext()
    )
    config = config or project.config.training
    if config is None:
        raise TrainingDataError("keel.yaml has no training: section; add one (see the README)")
    gate = gate if gate is not None else project.config.gate
    with located, project.store.leases.hold(f"keel:train:{project.config.name}", ttl=60):
        version, holdout, classes = _train_and_register(project, config)
    decision = None
    if gate is not None:
        decision = run_gate(project, version.version, gate, holdout=holdout)
    return TrainResult(Registry(project.store).get(version.version), decision, classes)


def feature_columns(frame: pd.DataFrame, config: TrainingConfig) -> list[str]:
    """The configured features, or every column but the target, exclusions and split time."""
    if config.target not in frame.columns:
        raise TrainingDataError(
            f"the training data has no target column '{config.target}'; columns are "
            f"{', '.join(map(str, frame.columns[:20]))}"
        )
    if config.features:
        missing = [name for name in config.features if name not in frame.columns]
        if missing:
            raise TrainingDataError(f"training.features names missing columns {', '.join(missing)}")
        return list(config.features)
    skip = {config.target, *config.exclude, config.split.column}
    return [str(name) for name in frame.columns if name not in skip]


def _train_and_register(
    project: Project, config: TrainingConfig
) -> tuple[ModelVersion, Any, ModelClasses]:
    started = time.perf_counter()
    kind = _booster_on_cluster(project, config)
    if kind is not None:
        with rows_on_workers(project, config.data) as rows:
            if rows is not None:
                return _train_on_workers(project, config, rows, kind, started)
    data = resolve_training_frame(project.root, config.data, config)
    read_s = time.perf_counter() - started
    frame = _usable_rows(data.frame, config.target)
    features = feature_columns(frame, config)
    train_rows, test_rows = _split(frame, config)
    schema = infer_schema(frame[features])
    X_train = prepare(train_rows, schema)
    fit_started = time.perf_counter()
    model, compute = _fit(project, config, X_train, train_rows[config.target])
    fit_s = time.perf_counter() - fit_started
    labels = train_rows[config.target].to_numpy()
    baseline = fit_baseline(model, X_train, train_rows[config.target])
    left_out = [c for c in frame.columns if c not in features and c != config.target]
    bundle = make_bundle(
        model, schema, config.target, labels, config.positive_class, baseline, left_out
    )
    blob = dump_bundle(bundle)
    with ThreadPoolExecutor(max_workers=1) as pool:  # DuckDB writes while we score
        holdout_digest = pool.submit(store_frame, project.artifacts, test_rows)
        scored = time.perf_counter()
        summary = model_summary(bundle, test_rows, config.metrics)
        score_s = time.perf_counter() - scored
        held = summary["holdout"]["rows"]
        summed = _data_summary(data, frame, config, len(train_rows), held)
        record = _record(project, config, summed, summary, blob)
        record["holdout"]["sha256"] = holdout_digest.result()
    record["compute"] = compute
    version = _register(project, record, started, read_s, fit_s, score_s)
    return version, test_rows, ModelClasses.from_dict(bundle["classes"])


def _booster_on_cluster(project: Project, config: TrainingConfig) -> str | None:
    """The booster's kind ("classifier" or "regressor") when the run may keep its rows on
    the Dask workers: ``compute.engine: dask`` and a booster (the data decides the rest)."""
    compute = project.config.compute
    if compute is None or compute.engine != "dask":
        return None
    from keel.training.cluster import booster_kind

    return booster_kind(config.model, project.root)


def _train_on_workers(
    project: Project, config: TrainingConfig, rows: WorkerRows, kind: str, started: float
) -> tuple[ModelVersion, Any, ModelClasses]:
    """``_train_and_register`` on rows that stay on the workers: split, schema, fit and
    scoring run there; the test rows' labels and scores and a bounded sample of them come
    back (``keel.training.workers``)."""
    from keel.training import workers
    from keel.training.cluster import fit_partitions

    read_s = time.perf_counter() - started
    client = rows.client
    features = feature_columns(rows.frame._meta, config)
    split = workers.split_on_workers(client, rows, features, config)  # takes rows.frame
    schema = split.schema
    fit_started = time.perf_counter()
    labels = workers.training_labels(client, split.y, kind)
    classes = list(labels) if isinstance(labels, dict) else None
    model = fit_partitions(
        config.model, split.X, split.y, classes, config.seed, project.root, client
    )
    fit_s = time.perf_counter() - fit_started
    sample = workers.holdout_sample(client, split, config.seed)
    baseline = workers.fitted_baseline(sample, schema, labels)
    left_out = [c for c in split.test.columns if c not in features and c != config.target]
    counts = labels if isinstance(labels, dict) else None
    bundle = make_bundle(
        model, schema, config.target, counts, config.positive_class, baseline, left_out
    )
    blob = dump_bundle(bundle)
    scored = time.perf_counter()
    summary = workers.summary_on_workers(client, bundle, split, sample, config.metrics)
    score_s = time.perf_counter() - scored
    record = _record(project, config, _worker_data(rows, split), summary, blob)
    record["holdout"]["sha256"] = store_frame(project.artifacts, sample)
    record["compute"] = {
        "engine": "dask",
        "fit": "dask",
        "rows_on": "workers",
        "workers": rows.workers,
        "rows": split.train_rows,
        "partitions": len(split.lengths),
        "gathered": {"test_scores": split.test_rows, "holdout_rows": len(sample)},
    }
    version = _register(project, record, started, read_s, fit_s, score_s)
    return version, sample, ModelClasses.from_dict(bundle["classes"])


def _worker_data(rows: WorkerRows, split: Any) -> dict[str, Any]:
    """``_data_summary`` of rows on the workers (the span is the source's ``timestamp:``)."""
    return {
        "ref": rows.ref,
        "sha256": rows.digest,
        "rows": sum(split.lengths),
        "train_rows": split.train_rows,
        "test_rows": split.test_rows,
        "missing_labels": rows.lineage["rows"] - sum(split.lengths),
        "start": rows.lineage["start"],
        "end": rows.lineage["end"],
        "lineage": rows.lineage,
    }


def _register(
    project: Project,
    record: dict[str, Any],
    started: float,
    read_s: float,
    fit_s: float,
    score_s: float,
) -> ModelVersion:
    record["duration_s"] = {
        "read": round(read_s, 4),
        "fit": round(fit_s, 4),
        "score": round(score_s, 4),
        "total": round(time.perf_counter() - started, 4),
    }
    return Registry(project.store).register(registry_row(record), record, provenance.actor())


def _fit(
    project: Project, config: TrainingConfig, X: pd.DataFrame, y: pd.Series
) -> tuple[Any, dict[str, Any]]:
    """The fitted model, and where and on how many rows it was fitted (for lineage).

    With ``compute.engine: dask`` boosters train on the cluster and other estimators on
    ``training.sample`` rows here (``keel.training.cluster``); locally every estimator
    fits on every training row.
    """
    compute = project.config.compute
    if compute is not None and compute.engine == "dask":
        from keel.training.cluster import fit_on_cluster

        fitted = fit_on_cluster(
            config.model, X, y, config.seed, project.root, compute, config.sample
        )
        return fitted.model, fitted.lineage
    model = fit_model(config.model, X, y, config.seed, project.root)
    return model, {"engine": "local", "fit": "client", "rows": len(X)}


def _usable_rows(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """The labelled rows; the record counts the others (``data.missing_labels``)."""
    if target in frame.columns and len(frame) and missing_labels(frame, target) == len(frame):
        raise TrainingDataError(
            f"every row's target '{target}' is missing ({len(frame)} rows); check that "
            "training.target names the label column and that the data holds labels"
        )
    if target in frame.columns:
        frame = frame[frame[target].notna()].reset_index(drop=True)
    if len(frame) < 2:
        raise TrainingDataError(f"the training data has {len(frame)} labelled rows; it needs more")
    return frame


def _split(frame: pd.DataFrame, config: TrainingConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    spec = config.split
    if spec.by == "time":
        if spec.column is None or spec.column not in frame.columns:
            raise TrainingDataError(
                f"training.split is by time but its column '{spec.column}' is not in the data; "
                "set training.split.column to a timestamp column"
            )
        train_index, test_index = time_split(as_times(frame[spec.column]), spec.test_size)
    else:
        train_index, test_index = random_split(len(frame), spec.test_size, config.seed)
    return frame.iloc[train_index], frame.iloc[test_index]


def _record(
    project: Project,
    config: TrainingConfig,
    data: dict[str, Any],
    summary: dict[str, Any],
    blob: bytes,
) -> dict[str, Any]:
    section = config.model_dump(mode="json")
    return {
        "source": "train",
        "name": project.config.name,
        "training": section,
        "config_hash": provenance.config_hash(section),
        "gate_policy": _gate_section(project),
        "data": data,
        "features_hash": _features_hash(project),
        "code": provenance.code_version(project.root),
        "libraries": provenance.library_versions(_estimator_package(config)),
        "artifact": {"sha256": project.artifacts.put_bytes(blob), "size_bytes": len(blob)},
        **summary,
    }


def _data_summary(
    data: TrainingFrame, frame: pd.DataFrame, config: TrainingConfig, train: int, test: int
) -> dict[str, Any]:
    column = config.split.column
    times = as_times(frame[column]) if column and column in frame.columns else None
    lineage = data.lineage or {}  # a source's span is its timestamp: column's
    return {
        "ref": data.ref,
        "sha256": data.digest,
        "rows": len(frame),
        "train_rows": train,
        "test_rows": test,
        "missing_labels": missing_labels(data.frame, config.target),
        "start": lineage.get("start") or (None if times is None else str(times.min())),
        "end": lineage.get("end") or (None if times is None else str(times.max())),
        "lineage": data.lineage,
    }


def _gate_section(project: Project) -> dict[str, Any] | None:
    gate = project.config.gate
    return None if gate is None else gate.model_dump(mode="json")


def _features_hash(project: Project) -> str | None:
    features = project.config.features
    return None if features is None else provenance.file_hash(project.root / features.module)


def _estimator_package(config: TrainingConfig) -> tuple[str, ...]:
    path = config.model.estimator or ""
    top = path.split(".")[0]
    return (top,) if top and top not in ("sklearn", "keel") else ()
