"""A booster's run with its rows left on the Dask workers (``keel.training.data.rows_on_workers``).

What is computed where, and what comes back to this process:

- the labelled rows are kept per partition on the workers; their counts per partition
  come back (one number per file);
- the split is ``training.split``'s exactly. Random: the held-out positions (a sorted
  array of ``test_size`` x rows positions, 8 bytes each) are drawn once, on a worker,
  with the seed, and every partition keeps the rows whose global positions are (not)
  among them. Time: each partition's sorted time keys (8 bytes a row) stay on its
  worker while about 9 passes, each counting the keys at most 256 candidates, find the
  first held-out row's key; a partition holds out the rows past it, and of the rows at
  it, those after the ones the split trains on (ties in row order);
- the input schema is inferred per partition on the workers and merged here (ranges,
  null flags, the union of categories): ``infer_schema`` of the whole table;
- each partition is split in one task on its worker, which gives its training rows as
  the model's input (``prepare``), their labels and its test rows; the partition read
  from the file is released once it is split, so while the booster fits the workers
  hold the table once (the training input and labels, the test rows), not the table
  beside its split;
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

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.errors import TrainingDataError
from keel.training.artifact import predict_scores
from keel.training.cluster import sample_rows
from keel.training.inputs import _MAX_CATEGORIES, infer_schema, prepare
from keel.training.record import summary_record
from keel.training.scoring import metric_scores, multiclass
from keel.training.split import (
    as_times,
    held_out,
    held_out_count,
    held_out_positions,
    kth_key,
    time_held_out,
    time_keys,
)

if TYPE_CHECKING:
    import pandas as pd

    from keel.schema import SplitSpec, TrainingConfig
    from keel.training.data import WorkerRows

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

_LOWEST = int(np.iinfo(np.int64).min)
HOLDOUT_ROWS = 20_000
"""At most this many test rows are brought here and stored as the version's holdout."""


@dataclass(frozen=True)
class Split:
    """What the workers hold once the table is split (persisted Dask collections): ``X``
    the training rows as the model's input (``prepare``'d with ``schema``, the input
    schema of every labelled row), ``y`` their labels as the table has them and ``test``
    the held-out rows with every column; the labelled rows per partition, and the
    training and test rows per partition."""

    X: Any
    y: Any
    test: Any
    schema: list[dict[str, Any]]
    lengths: list[int]
    train_lengths: list[int]
    test_lengths: list[int]

    @property
    def train_rows(self) -> int:
        return sum(self.train_lengths)

    @property
    def test_rows(self) -> int:
        return sum(self.test_lengths)


def labelled(client: Any, frame: Any, target: str) -> tuple[Any, list[int]]:
    """The rows with a label and their count per partition; refused as ``_usable_rows``
    refuses a local frame. (Not persisted: the split's parts are, filtered on the way.)"""
    rows = frame[frame[target].notnull()]
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


def split_on_workers(
    client: Any, rows: WorkerRows, features: list[str], config: TrainingConfig
) -> Split:
    """``training.split`` of the labelled rows by the rule ``random_split`` or
    ``time_split`` follows (``keel.training.split``), with the input schema of their
    ``features``: each partition is split, and its training rows prepared, on its worker.

    The table's partitions are taken from ``rows`` (``WorkerRows.take``) and dropped here
    once the split is submitted: the workers release each one when its split is done, so
    they hold the table once (its training matrix and test rows) while the booster fits,
    not the table beside its split."""
    frame = rows.take()
    kept, lengths = labelled(client, frame, config.target)
    spec = config.split
    if spec.by == "time" and (spec.column is None or spec.column not in frame.columns):
        raise TrainingDataError(
            f"training.split is by time but its column '{spec.column}' is not in the data; "
            "set training.split.column to a timestamp column"
        )
    schema = schema_on_workers(client, kept[features])
    rule: Callable[..., Any]
    if spec.by == "time":
        rule, arguments = _time_held, _time_cut(client, kept, lengths, spec)
    else:
        positions = client.submit(
            held_out_positions, sum(lengths), spec.test_size, config.seed, pure=False
        )
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).tolist()
        rule, arguments = _random_held, [(positions, start) for start in starts]
    X, y, test = _split_by(client, frame, rule, arguments, config.target, schema)
    del frame, kept  # the split's tasks hold the partitions now, each until it is split
    train_lengths = _lengths(client, X)
    filled = [i for i, n in enumerate(train_lengths) if n]
    if len(filled) < len(train_lengths):
        # XGBoost refuses a worker whose input is only empty partitions (an empty month,
        # a partition all held out) when there are categorical features; they add nothing
        X, y = X.partitions[filled], y.partitions[filled]
    return Split(X, y, test, schema, lengths, train_lengths, _lengths(client, test))


def _split_by(
    client: Any,
    frame: Any,
    rule: Callable[..., Any],
    arguments: list[tuple[Any, ...]],
    target: str,
    schema: list[dict[str, Any]],
) -> list[Any]:
    """``_split_part`` of every partition of ``frame`` (with ``arguments[i]``), persisted
    as three collections: the training input, the training labels and the test rows."""
    import dask.dataframe as dd
    from dask.delayed import delayed

    parts = zip(frame.to_delayed(), arguments, strict=True)
    pieces = [delayed(_split_part)(part, target, schema, rule, *given) for part, given in parts]
    metas = (prepare(frame._meta, schema), frame._meta[target], frame._meta)
    collections = [
        dd.from_delayed([piece[i] for piece in pieces], meta=meta, verify_meta=False)
        for i, meta in enumerate(metas)
    ]
    return list(client.persist(collections))


def _split_part(
    part: pd.DataFrame,
    target: str,
    schema: list[dict[str, Any]],
    rule: Callable[..., Any],
    *given: Any,
) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """A partition's training rows as the model's input, their labels, and its test rows
    (on a worker): ``rule(part, labelled, *given)`` says which of its labelled rows (their
    positions ``labelled``) are held out."""
    rows = np.flatnonzero(part[target].notnull().to_numpy())
    held = rule(part, rows, *given)
    # numbered from 0: the file's row numbers would be kept as an index, 8 bytes a row
    train = part.take(rows[~held]).reset_index(drop=True)
    test = part.take(rows[held]).reset_index(drop=True)
    # a copy: a column of a frame can keep the frame's other columns of its type alive
    return prepare(train, schema), train[target].copy(), test


def _random_held(part: pd.DataFrame, rows: Any, positions: Any, start: int) -> Any:
    """Which of ``rows`` (at global positions from ``start``) are at ``positions``."""
    return held_out(positions, start, start + len(rows))


def _random_rows(part: pd.DataFrame, positions: Any, start: int, test: bool) -> pd.DataFrame:
    """A partition's rows (at global positions from ``start``) that are (not) at ``positions``."""
    mask = held_out(positions, start, start + len(part))
    return part[mask if test else ~mask]


def _time_cut(
    client: Any, frame: Any, lengths: list[int], spec: SplitSpec
) -> list[tuple[Any, ...]]:
    """Each partition's arguments of ``_time_held``: the key of the first held-out row,
    found with a few passes over each partition's sorted keys (8 bytes a row, on the
    workers), the ties before the partition and how many ties are trained on."""
    from dask.delayed import delayed

    column = spec.column
    keys = client.compute([delayed(_sorted_keys)(part, column) for part in frame.to_delayed()])

    def count_at_most(candidates: Any) -> Any:
        return sum(client.gather([client.submit(_at_most, k, candidates) for k in keys]))

    rows = sum(lengths)
    cut = rows - held_out_count(rows, spec.test_size)
    cutoff = kth_key(count_at_most, cut)
    below = int(count_at_most(np.array([cutoff - 1]))[0]) if cutoff > _LOWEST else 0
    ties = client.gather([client.submit(_tied, k, cutoff) for k in keys])
    firsts = np.concatenate([[0], np.cumsum(ties)[:-1]]).tolist()
    return [(column, cutoff, first, cut - below) for first in firsts]


def _sorted_keys(part: pd.DataFrame, column: str) -> Any:
    return np.sort(time_keys(as_times(part[column])))


def _at_most(keys: Any, candidates: Any) -> Any:
    return np.searchsorted(keys, candidates, side="right")


def _tied(keys: Any, cutoff: int) -> int:
    return int(np.searchsorted(keys, cutoff, "right") - np.searchsorted(keys, cutoff, "left"))


def _time_held(
    part: pd.DataFrame, rows: Any, column: str, cutoff: int, first_tie: int, ties_kept: int
) -> Any:
    """Which of a partition's ``rows`` ``time_split`` holds out."""
    keys = time_keys(as_times(part[column].take(rows)))
    return time_held_out(keys, cutoff, first_tie, ties_kept)


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
    chosen = [delayed(_random_rows)(part, positions, start, True) for part, start in parts]
    return pd.concat(client.gather(client.compute(chosen)), ignore_index=True)


def summary_on_workers(
    client: Any, bundle: dict[str, Any], split: Split, sample: pd.DataFrame, names: list[str]
) -> dict[str, Any]:
    """``model_summary``'s record with the metrics, calibration and prediction reference
    of every test row (scored on the workers) and the rest computed on ``sample``."""
    from dask.delayed import delayed

    (shared,) = client.scatter([bundle], hash=False)  # a list: a dict would be one per key
    scored = [delayed(_scored)(part, shared) for part in split.test.to_delayed()]
    # a partition without test rows is left out: a model asked about no rows may answer
    # with fewer probability columns than it has classes (XGBoost does)
    pieces = [piece for piece in client.gather(client.compute(scored)) if len(piece[1])]
    y_true = np.concatenate([_decoded(*labels) for labels, _ in pieces])
    found = np.concatenate([scores for _, scores in pieces])
    scores = found.max(axis=1) if multiclass(bundle) else found
    held = predict_scores(bundle, sample)
    record = summary_record(bundle, y_true, found, scores, sample, held, names)
    record["holdout"]["drawn_from"] = split.test_rows
    return record


def _scored(part: pd.DataFrame, bundle: dict[str, Any]) -> tuple[Any, Any]:
    """A test partition's labels and metric scores (on a worker). Text labels travel as
    codes into the partition's distinct labels: 8 bytes a row, not a string each."""
    import pandas as pd

    labels = part[bundle["target"]].to_numpy()
    if labels.dtype != object:
        return (None, labels), metric_scores(bundle, part)
    codes, uniques = pd.factorize(labels)
    return (codes, np.asarray(uniques, dtype=object)), metric_scores(bundle, part)


def _decoded(codes: Any, values: Any) -> Any:
    """``_scored``'s labels as an array (text labels share one object per label)."""
    return values if codes is None else values[codes]


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
