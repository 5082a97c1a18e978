"""The example project's training table, until the feature store can build it.

``build_training_table(root)`` joins ``data/labels.csv`` with each customer's attributes
and their logins and tickets in the 30 days strictly before ``prediction_time`` — the
columns the example's hard-example file uses. It is named in keel.yaml as
``training.data: keel.training.example:build_training_table``.

Simplification, on purpose: customer attributes (plan, charges) are the latest row of
customers.csv, not the row as of prediction_time; the feature store's point-in-time joins
replace this.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from keel.errors import TrainingDataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["build_training_table"]

_QUERY = """
WITH customers AS (
    SELECT * FROM read_csv(?, header = true, types = {'customer_id': 'VARCHAR'})
    QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY updated_at DESC) = 1
),
labels AS (SELECT * FROM read_csv(?, header = true, types = {'customer_id': 'VARCHAR'})),
events AS (
    SELECT customer_id, event_time, kind
    FROM read_csv(?, header = true, union_by_name = true, types = {'customer_id': 'VARCHAR'})
)
SELECT l.customer_id, l.prediction_time, c.plan, c.region, c.age, c.income,
       c.monthly_charges,
       CAST(floor(epoch(l.prediction_time - c.signup_at) / 86400) AS BIGINT) AS tenure_days,
       count(e.kind) FILTER (WHERE e.kind = 'ticket') AS tickets_30d,
       count(e.kind) FILTER (WHERE e.kind = 'login') AS logins_30d,
       l.churned
FROM labels l
JOIN customers c ON c.customer_id = l.customer_id
LEFT JOIN events e
    ON e.customer_id = l.customer_id
    AND e.event_time >= l.prediction_time - INTERVAL 30 DAY
    AND e.event_time < l.prediction_time
GROUP BY ALL
ORDER BY l.prediction_time, l.customer_id
"""


def build_training_table(root: Path) -> pd.DataFrame:
    """Labels joined with customer attributes and 30-day event counts before each label."""
    import duckdb

    data = Path(root) / "data"
    paths = [data / "customers.csv", data / "labels.csv"]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing or not any((data / "events").glob("*.csv")):
        raise TrainingDataError(
            f"the example data is incomplete in {data} (needs customers.csv, labels.csv and "
            "events/*.csv); run `keel init` to generate it"
        )
    with duckdb.connect() as connection:
        frame: pd.DataFrame = connection.execute(
            _QUERY, [str(paths[0]), str(paths[1]), str(data / "events" / "*.csv")]
        ).df()
    frame["prediction_time"] = frame["prediction_time"].astype("datetime64[ns]")
    return frame
