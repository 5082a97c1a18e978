"""Rows handed to request-time transforms offline: the values serving would hand them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from keel.features import request_transform
from keel.features.rows import apply_transforms, plain_column


def test_each_dtype_becomes_plain_python_values() -> None:
    """Numbers, text, booleans and times become Python values; every kind of missing is None."""
    frame = pd.DataFrame(
        {
            "int": [1, 2],
            "float": [np.nan, np.inf],
            "Int64": pd.array([None, 3], dtype="Int64"),
            "bool": [True, False],
            "boolean": pd.array([None, True], dtype="boolean"),
            "text": pd.Series([None, "c"], dtype="str"),
            "object": pd.Series([None, 3.5], dtype=object),
            "time": pd.to_datetime([None, "2020-01-02 03:04:05.5"], format="ISO8601"),
            "category": pd.Categorical([None, "b"]),
        }
    )
    columns = {name: plain_column(frame[name]) for name in frame.columns}
    assert columns == {
        "int": [1, 2],
        "float": [None, None],
        "Int64": [None, 3],
        "bool": [True, False],
        "boolean": [None, True],
        "text": [None, "c"],
        "object": [None, 3.5],
        "time": [None, "2020-01-02T03:04:05.500000"],
        "category": [None, "b"],
    }
    whole = pd.Series(pd.to_datetime(["2020-01-02 03:04:05"]))
    assert plain_column(whole) == ["2020-01-02T03:04:05"]
    kinds = {name: [type(v).__name__ for v in values] for name, values in columns.items()}
    assert kinds["int"] == ["int", "int"] and kinds["Int64"][1] == "int"
    assert kinds["bool"] == ["bool", "bool"] and kinds["boolean"][1] == "bool"


def test_a_transform_sees_the_transforms_before_it() -> None:
    """As on the serving path, a later transform reads an earlier one's value."""

    @request_transform("a")
    def double(row: dict[str, object]) -> object:
        return None if row["a"] is None else 2 * row["a"]  # type: ignore[operator]

    @request_transform("double")
    def plus_one(row: dict[str, object]) -> object:
        return None if row["double"] is None else row["double"] + 1  # type: ignore[operator]

    frame = apply_transforms(
        pd.DataFrame({"a": [1.0, np.nan]}), {"double": double, "plus_one": plus_one}
    )
    assert frame["plus_one"].iloc[0] == 3.0 and pd.isna(frame["plus_one"].iloc[1])
