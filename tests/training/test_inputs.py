"""The input schema and reference statistics recorded with every version."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from keel.errors import TrainingDataError
from keel.training.inputs import infer_schema, prepare, rows_preparer
from keel.training.reference import numeric_reference, reference_statistics


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"age": [20, 30, None], "region": ["north", "south", "north"]})


def test_schema_records_types_ranges_and_categories() -> None:
    """Numbers get a range and nullability; text gets its sorted categories."""
    schema = {column["name"]: column for column in infer_schema(_frame())}
    assert schema["age"] == {
        "name": "age",
        "nullable": True,
        "type": "number",
        "min": 20.0,
        "max": 30.0,
    }
    assert schema["region"]["categories"] == ["north", "south"]


def test_prepare_turns_unseen_categories_into_missing() -> None:
    """A category never seen in training becomes missing, not a new code."""
    schema = infer_schema(_frame())
    prepared = prepare(pd.DataFrame({"age": [40], "region": ["mars"]}), schema)
    assert prepared["region"].isna().all()


def _messy_rows(count: int, seed: int) -> list[dict[str, object]]:
    """Rows as a server meets them: missing values, absent keys, unseen categories, a
    number or a boolean where text is expected, integers in a number column."""
    random = np.random.default_rng(seed)
    regions = ["north", "south", "east", None, "mars", 7, True, float("nan")]
    rows: list[dict[str, object]] = []
    for _ in range(count):
        row: dict[str, object] = {
            "age": [None, int(random.integers(18, 90)), float(random.normal(40, 9))][
                int(random.integers(3))
            ],
            "region": regions[int(random.integers(len(regions)))],
            "plan": ["basic", "7", 7, "1.5", 1.5, None][int(random.integers(6))],
            "vip": [True, False, None][int(random.integers(3))],
        }
        if random.random() < 0.1:
            del row["age"]  # an absent key is a missing value
        rows.append(row)
    return rows


def test_rows_preparer_shapes_rows_exactly_as_prepare_does() -> None:
    """The server's column-by-column path gives the model the frame training's would:
    the same categories and codes, the same numbers, missing where prepare has missing."""
    schema = [
        {"name": "age", "type": "number", "nullable": True},
        {"name": "region", "type": "category", "categories": ["east", "north", "south"]},
        {"name": "plan", "type": "category", "categories": ["1.5", "7", "basic"]},
        {"name": "vip", "type": "boolean", "nullable": True},
    ]
    fast = rows_preparer(schema)
    for seed in range(20):
        rows = _messy_rows(int(np.random.default_rng(seed).integers(1, 40)), seed)
        names = [column["name"] for column in schema]
        expected = prepare(pd.DataFrame.from_records(rows, columns=names), schema)
        got = fast(rows)
        assert list(got.columns) == names
        for column in schema:
            name = column["name"]
            if column["type"] == "category":
                assert got[name].dtype == expected[name].dtype
                assert got[name].cat.codes.tolist() == expected[name].cat.codes.tolist()
            else:
                assert got[name].dtype == "float64"
                np.testing.assert_array_equal(got[name], expected[name].astype("float64"))


def test_a_model_predicts_the_same_from_either_path() -> None:
    """A gradient-boosting model with native categoricals, fitted on prepare's frame,
    scores the server's frame identically."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    train = pd.DataFrame(
        {
            "age": np.random.default_rng(0).normal(40, 9, 400),
            "region": np.random.default_rng(1).choice(["north", "south", "east"], 400),
        }
    )
    schema = infer_schema(train)
    target = (train["age"] > 40) ^ (train["region"] == "east")
    model = HistGradientBoostingClassifier(max_iter=20, categorical_features="from_dtype")
    model.fit(prepare(train, schema), target)
    rows = _messy_rows(200, seed=3)
    names = [column["name"] for column in schema]
    expected = model.predict_proba(prepare(pd.DataFrame.from_records(rows, columns=names), schema))
    np.testing.assert_array_equal(model.predict_proba(rows_preparer(schema)(rows)), expected)


def test_prepare_refuses_missing_columns() -> None:
    """A frame without one of the model's columns is a clear error."""
    with pytest.raises(TrainingDataError, match="lacks the model's columns region"):
        prepare(pd.DataFrame({"age": [1]}), infer_schema(_frame()))


def test_reference_counts_categories_and_nulls() -> None:
    """Categorical references count each value; numeric ones record the null rate."""
    reference = reference_statistics(_frame(), infer_schema(_frame()))
    assert reference["region"]["counts"] == {"north": 2, "south": 1}
    assert reference["age"]["null_rate"] == pytest.approx(1 / 3, abs=1e-6)


def test_numeric_reference_bins_hold_every_value() -> None:
    """Decile bins over the values count every non-missing value; the last edge lies just
    past the max, so the max falls inside the last bin as monitoring's sketches bin it."""
    reference = numeric_reference(np.arange(100, dtype=float))
    assert sum(reference["counts"]) == 100 and reference["max"] == 99
    assert reference["edges"][0] == 0 and reference["edges"][-1] == np.nextafter(99.0, np.inf)
