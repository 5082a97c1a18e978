"""The input schema and reference statistics recorded with every version."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from keel.errors import TrainingDataError
from keel.training.inputs import infer_schema, prepare
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
    """Decile bins over the values count every non-missing value."""
    reference = numeric_reference(np.arange(100, dtype=float))
    assert sum(reference["counts"]) == 100
    assert reference["edges"][0] == 0 and reference["edges"][-1] == 99
