"""The input schema a model was trained on, and the one way frames are shaped to fit it.

``infer_schema`` reads names, types, ranges and categories off the training features;
the server enforces the same schema. ``prepare`` turns any frame into the model's input:
the columns in training order, text columns as pandas categoricals with the training
categories (unseen values become missing), so training and serving feed the estimator
identically.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel.errors import TrainingDataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["infer_schema", "prepare"]

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
