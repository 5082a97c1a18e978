"""A booster's run with its rows left on the Dask workers (``keel.training.data.rows_on_workers``).

What is computed where, and what comes back to this process:

- the labelled rows are kept per partition on the workers; their counts per partition
  come back (one number per file);
- the split is ``random_split``'s exactly: the held-out positions (a sorted array of
  ``test_size`` x rows positions, 8 bytes each) are drawn once, on a worker, with the seed,
  and every partition keeps the rows whose global positions are (not) among them;
- the input schema is inferred per partition on the workers and merged here (ranges,
  null flags, the union of categories): ``infer_schema`` of the whole table;
- the classes and their training counts (one row per class), or a regressor's mean
  target, come back for the bundle's classes and the baseline model;
- the test rows are scored on the workers; their labels and scores come back, two
  columns (a many-class model's: its k class probabilities), about 16 bytes a test row
  for a binary model: the metrics, calibration and prediction reference are computed
  from every test row;
- the held-out rows the version stores (the gate scores them: slices, the loadability
  check, latency, the baseline and production comparisons; the feature reference for
  drift is computed on them) are at most ``HOLDOUT_ROWS`` test rows drawn with the seed,
  so all of them when the test part is smaller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.errors import TrainingDataError
from keel.training.artifact import predict_scores
from keel.training.classes import classes_from_bundle
from keel.training.cluster import sample_rows
from keel.training.evaluate import metrics_of, scores_digest
from keel.training.inputs import _MAX_CATEGORIES, infer_schema, prepare
from keel.training.metrics import calibration_summary
from keel.training.record import metric_names
from keel.training.reference import numeric_reference, reference_statistics
from keel.training.scoring import metric_scores, multiclass
from keel.training.split import held_out, held_out_positions

if TYPE_CHECKING:
    import pandas as pd

    from keel.schema import TrainingConfig

__all__ = [
    "HOLDOUT_ROWS",
    "Split",
    "fitted_baseline",
    "holdout_sample",
    "labelled",
    "merged_schema",
    "schema_on_workers",
    "split_on_workers",
    "summary_on_workers",
    "training_labels",
]

HOLDOUT_ROWS = 20_000
"""At most this many test rows are brought here and stored as the version's holdout."""


@dataclass(frozen=True)
class Split:
    """The train and test parts (persisted Dask frames) and their rows per partition."""

    train: Any
    test: Any
    train_lengths: list[int]
    test_lengths: list[int]

    @property
    def train_rows(self) -> int:
        return sum(self.train_lengths)

    @property
    def test_rows(self) -> int:
        return sum(self.test_lengths)


def labelled(client: Any, frame: Any, target: str) -> tuple[Any, list[int]]:
    """The rows with a label (persisted) and their count per partition; refused as
    ``_usable_rows`` refuses a local frame."""
    rows = client.persist(frame[frame[target].notnull()])
    lengths = _lengths(client, rows)
    total = int(client.compute(frame.map_partitions(len)).result().sum())
    if total and not sum(lengths):
        raise TrainingDataError(
            f"every row's target '{target}' is missing ({total} rows); check that "
            "training.target names the label column and that the data holds labels"
        )
    if sum(lengths) < 2:
        found = sum(lengths)
        raise TrainingDataError(f"the training data has {found} labelled rows; it needs more")
    return rows, lengths


def split_on_workers(client: Any, frame: Any, lengths: list[int], config: TrainingConfig) -> Split:
    """``random_split`` of the rows, each partition split on its worker."""
    import dask.dataframe as dd
    from dask.delayed import delayed

    positions = client.submit(
        held_out_positions, sum(lengths), config.split.test_size, config.seed, pure=False
    )
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).tolist()
    parts = list(zip(frame.to_delayed(), starts, strict=True))
    meta = frame._meta
    train = dd.from_delayed(
        [delayed(_rows_at)(part, positions, start, False) for part, start in parts],
        meta=meta,
        verify_meta=False,
    )
    test = dd.from_delayed(
        [delayed(_rows_at)(part, positions, start, True) for part, start in parts],
        meta=meta,
        verify_meta=False,
    )
    train, test = client.persist([train, test])
    return Split(train, test, _lengths(client, train), _lengths(client, test))


def _rows_at(part: pd.DataFrame, positions: Any, start: int, chosen: bool) -> pd.DataFrame:
    """A partition's rows (at global positions from ``start``) that are (not) at ``positions``."""
    mask = held_out(positions, start, start + len(part))
    return part[mask if chosen else ~mask]


def _lengths(client: Any, frame: Any) -> list[int]:
    return [int(n) for n in client.compute(frame.map_partitions(len)).result()]


def schema_on_workers(client: Any, frame: Any) -> list[dict[str, Any]]:
    """``infer_schema`` of every row of ``frame``, each partition's computed on its worker."""
    from dask.delayed import delayed

    found = client.compute([delayed(infer_schema)(part) for part in frame.to_delayed()])
    return merged_schema(client.gather(found))


def merged_schema(parts: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The schema of the union of rows whose parts' schemas are ``parts`` (same columns)."""
    merged = []
    for columns in zip(*parts, strict=True):
        entry = dict(columns[0], nullable=any(column["nullable"] for column in columns))
        for key, pick in (("min", min), ("max", max)):
            if key in entry:
                present = [column[key] for column in columns if column[key] is not None]
                entry[key] = pick(present) if present else None
        if "categories" in entry:
            entry["categories"] = sorted(set().union(*(c["categories"] for c in columns)))
            if len(entry["categories"]) > _MAX_CATEGORIES:
                raise TrainingDataError(
                    f"column '{entry['name']}' has {len(entry['categories'])} distinct text "
                    "values; an id or free text is not a feature: list it under "
                    "training.exclude"
                )
        merged.append(entry)
    return merged


def holdout_sample(client: Any, split: Split, seed: int) -> pd.DataFrame:
    """At most ``HOLDOUT_ROWS`` test rows, drawn with ``seed``, in row order."""
    import pandas as pd
    from dask.delayed import delayed

    positions = sample_rows(split.test_rows, HOLDOUT_ROWS, seed)
    starts = np.concatenate([[0], np.cumsum(split.test_lengths)[:-1]]).tolist()
    parts = zip(split.test.to_delayed(), starts, strict=True)
    chosen = [delayed(_rows_at)(part, positions, start, True) for part, start in parts]
    return pd.concat(client.gather(client.compute(chosen)), ignore_index=True)


def summary_on_workers(
    client: Any, bundle: dict[str, Any], split: Split, sample: pd.DataFrame, names: list[str]
) -> dict[str, Any]:
    """``model_summary``'s record with the metrics, calibration and prediction reference
    of every test row (scored on the workers) and the rest computed on ``sample``."""
    from dask.delayed import delayed

    shared = client.scatter(bundle, broadcast=False)
    scored = [delayed(_scored)(part, shared) for part in split.test.to_delayed()]
    pieces = client.gather(client.compute(scored))
    y_true = np.concatenate([labels for labels, _ in pieces])
    found = np.concatenate([scores for _, scores in pieces])
    multi = multiclass(bundle)
    scores = found.max(axis=1) if multi else found
    binary = bundle["task"] == "classification" and bundle["positive"] is not None
    return {
        "task": bundle["task"],
        "positive": bundle["positive"],
        "classes": classes_from_bundle(bundle).to_dict(),
        "metrics": metrics_of(bundle, y_true, found, metric_names(names, binary or multi)),
        "calibration": calibration_summary(y_true, scores, bundle["positive"]) if binary else None,
        "reference": {
            "features": reference_statistics(sample, bundle["schema"]),
            "predictions": numeric_reference(scores),
        },
        "schema": bundle["schema"],
        "holdout": {
            "rows": len(sample),
            "scores_sha256": scores_digest(predict_scores(bundle, sample)),
            "drawn_from": split.test_rows,
        },
    }


def _scored(part: pd.DataFrame, bundle: dict[str, Any]) -> tuple[Any, Any]:
    """A test partition's labels and metric scores (on a worker)."""
    return part[bundle["target"]].to_numpy(), metric_scores(bundle, part)


def training_labels(client: Any, labels: Any, kind: str) -> dict[Any, int] | float:
    """A classifier's training labels and their counts, in sorted label order; a
    regressor's mean target (both computed on the workers)."""
    if kind == "regressor":
        return float(client.compute(labels.mean()).result())
    counts = client.compute(labels.value_counts()).result().sort_index()
    return {_plain(label): int(count) for label, count in counts.items()}


def fitted_baseline(
    sample: pd.DataFrame, schema: list[dict[str, Any]], labels: dict[Any, int] | float
) -> Any:
    """``fit_baseline``'s model from ``training_labels`` alone: the prior dummy fitted on
    one row per class weighted by its count, or the mean dummy on one row holding the
    mean (a dummy model reads the input's columns, never its values)."""
    from sklearn.dummy import DummyClassifier, DummyRegressor

    X = prepare(sample, schema)
    if not isinstance(labels, dict):
        return DummyRegressor(strategy="mean").fit(X.iloc[:1], [labels])
    rows = X.iloc[np.arange(len(labels)) % len(X)].reset_index(drop=True)
    weights = np.array(list(labels.values()), dtype="float64")
    return DummyClassifier(strategy="prior").fit(rows, list(labels), sample_weight=weights)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
