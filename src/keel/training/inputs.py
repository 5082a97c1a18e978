"""The input schema a model was trained on, and the one way frames are shaped to fit it.

``infer_schema`` reads names, types, ranges and categories off the training features;
the server enforces the same schema. ``prepare`` turns any frame into the model's input:
the columns in training order, text columns as pandas categoricals with the training
categories (unseen values become missing), so training and serving feed the estimator
identically. ``rows_preparer`` does the same for rows given as mappings (the server's
batches) without building a frame first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keel.errors import TrainingDataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["infer_schema", "prepare", "rows_preparer"]

_MAX_CATEGORIES = 1000


def infer_schema(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One entry per column: name, type, nullable, and its range or categories."""
    return [_column_schema(str(name), frame[name]) for name in frame.columns]


def prepare(frame: pd.DataFrame, schema: list[dict[str, Any]]) -> pd.DataFrame:
    """The columns of ``schema`` from ``frame``, typed as at training time."""
    import pandas as pd

    names = [column["name"] for column in schema]
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise TrainingDataError(f"the input lacks the model's columns {', '.join(missing)}")
    out = {}
    for column in schema:
        values = frame[column["name"]]
        if column["type"] == "category":
            text = values.astype("string")
            known = text.where(text.isin(column["categories"]))
            values = pd.Categorical(known, categories=column["categories"])
        elif column["type"] == "boolean":
            values = values.astype("float64")
        out[column["name"]] = values
    return pd.DataFrame(out, index=frame.index)


def rows_preparer(
    schema: list[dict[str, Any]],
) -> Callable[[Sequence[Mapping[str, Any]]], pd.DataFrame]:
    """``prepare`` for rows given as mappings, compiled once per schema.

    The model sees what ``prepare`` gives it: text columns as categoricals with the training
    categories (a value is matched as its text; unseen or missing values are missing) and
    numbers as float64, a missing value as NaN. Built column by column, a few rows take a
    tenth of the time of a frame built first and then converted.
    """
    import numpy as np
    import pandas as pd

    plan: list[tuple[str, dict[str, int] | None, Any]] = []
    for column in schema:
        if column["type"] == "category":
            categories = column["categories"]
            codes = {str(category): code for code, category in enumerate(categories)}
            plan.append((column["name"], codes, pd.CategoricalDtype(categories)))
        else:
            plan.append((column["name"], None, None))

    def prepared(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        out: dict[str, Any] = {}
        for name, codes, dtype in plan:
            values = [row.get(name) for row in rows]
            if codes is None:
                out[name] = np.array([np.nan if v is None else v for v in values], "float64")
            else:
                found = [-1 if _missing(v) else codes.get(str(v), -1) for v in values]
                out[name] = pd.Categorical.from_codes(found, dtype=dtype)
        return pd.DataFrame(out)

    return prepared


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _column_schema(name: str, values: pd.Series) -> dict[str, Any]:
    import pandas as pd

    entry: dict[str, Any] = {"name": name, "nullable": bool(values.isna().any())}
    if pd.api.types.is_bool_dtype(values):
        return {**entry, "type": "boolean"}
    if pd.api.types.is_numeric_dtype(values):
        kind = "integer" if pd.api.types.is_integer_dtype(values) else "number"
        present = values.dropna()
        low = float(present.min()) if len(present) else None
        high = float(present.max()) if len(present) else None
        return {**entry, "type": kind, "min": low, "max": high}
    categories = sorted(str(v) for v in values.dropna().unique())
    if len(categories) > _MAX_CATEGORIES:
        raise TrainingDataError(
            f"column '{name}' has {len(categories)} distinct text values; an id or free text "
            "is not a feature: list it under training.exclude"
        )
    return {**entry, "type": "category", "categories": categories}
