"""Batch scoring hands the model server's code rows as JSON would: a table's time column
arrives as ISO 8601 text, so the rows can be logged (``keel predict --batch`` on a source
with a ``timestamp:`` column used to fail with "Type is not JSON serializable")."""

from __future__ import annotations

import orjson
import pandas as pd

from keel.serving.batch_scoring import records


def test_a_time_column_becomes_iso_text_and_a_missing_time_none() -> None:
    """A datetime column is ISO text (``Timestamp.isoformat``), NaT is None, the other
    columns keep their values, and every row encodes as JSON."""
    frame = pd.DataFrame(
        {
            "at": pd.to_datetime(["2026-04-01 07:30", None]),
            "amount": [1.5, None],
            "plan": ["pro", None],
        }
    )
    rows = records(frame)
    assert rows == [
        {"at": pd.Timestamp("2026-04-01 07:30").isoformat(), "amount": 1.5, "plan": "pro"},
        {"at": None, "amount": None, "plan": None},
    ]
    assert orjson.loads(orjson.dumps(rows)) == rows
