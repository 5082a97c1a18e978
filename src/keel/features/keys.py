"""Entity keys: how one or several key columns become the one id a view's rows are stored by.

A view keyed by one column stores the column's value as text (``c_000042``); a view keyed
by several (a composite key, e.g. airport and carrier) stores them as a compact JSON list of
texts (``["JFK","AA"]``), which no separator inside a value can make ambiguous. The SQL the
offline store runs and the Python the online lookup runs build the same text, so a label
row and a request row find the same stored row. A key with a null part matches nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from keel.errors import FeatureError

__all__ = ["entity_id", "entity_sql", "key_row", "missing_key_error", "normalize_keys"]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def entity_sql(columns: Sequence[str], table: str | None = None) -> str:
    """The SQL expression of the entity id of ``columns`` (optionally of a table alias)."""
    parts = [_quote(c) if table is None else f"{table}.{_quote(c)}" for c in columns]
    texts = [f"CAST({part} AS VARCHAR)" for part in parts]
    if len(texts) == 1:
        return texts[0]
    nulls = " OR ".join(f"{part} IS NULL" for part in parts)
    return f"CASE WHEN {nulls} THEN NULL ELSE to_json([{', '.join(texts)}])::VARCHAR END"


def entity_id(columns: Sequence[str], row: Mapping[str, Any]) -> str | None:
    """The entity id a request row names for a view keyed by ``columns`` (None if any is)."""
    values = [row.get(column) for column in columns]
    if any(value is None for value in values):
        return None
    if len(values) == 1:
        return str(values[0])
    return orjson.dumps([str(value) for value in values]).decode()


def key_row(columns: Sequence[str], entity: str) -> dict[str, str]:
    """The key columns of a stored entity id: the inverse of ``entity_id``."""
    if len(columns) == 1:
        return {columns[0]: entity}
    try:
        values = orjson.loads(entity)
        if not isinstance(values, list) or len(values) != len(columns):
            raise ValueError
    except ValueError:
        example = orjson.dumps([f"<{c}>" for c in columns]).decode()
        raise FeatureError(
            f"'{entity}' is not a key of ({', '.join(columns)}); write it as {example}"
        ) from None
    return {column: str(value) for column, value in zip(columns, values, strict=True)}


def missing_key_error(view: str, column: str, known: Sequence[str]) -> FeatureError:
    return FeatureError(
        f"the labels have no column '{column}', which feature view '{view}' is keyed by "
        f"(columns: {', '.join(map(str, known))}); add it to the labels or remove the view"
    )


def normalize_keys(frame: Any, columns: Sequence[str]) -> Any:
    """Whole-number float key columns (integers with nulls, as pandas reads them) as Int64.

    Without this a label key 42 read next to a blank cell is the float 42.0, whose text
    '42.0' would never match the source's '42'.
    """
    import pandas as pd

    changed = {}
    for column in columns:
        values = frame[column]
        if pd.api.types.is_float_dtype(values):
            present = values.dropna()
            if (present == present.round()).all():
                changed[column] = values.astype("Int64")
    return frame.assign(**changed) if changed else frame
