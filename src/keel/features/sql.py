"""The SQL that computes feature values and joins them to labels: pure string building.

Everything time-related follows one rule so that offline and online agree: a view's row
at ``feature_ts`` T is the entity's state from T on, and an aggregation row at T covers
events in ``[T - window, T)``. A label at time t takes the latest row with T <= t (DuckDB's
ASOF join), and only if t - T is within the view's maximum age.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from keel.features.definitions import Aggregation, FeatureView
from keel.features.keys import entity_sql

__all__ = [
    "EPOCH",
    "floor_to_grid",
    "path_literal",
    "point_in_time_sql",
    "quote",
    "snapshot_sql",
]

EPOCH = datetime(1970, 1, 1)


def quote(name: str) -> str:
    """A SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def path_literal(path: object) -> str:
    """A file path as a SQL string literal (a quote in a folder name cannot break out)."""
    return "'" + str(path).replace("'", "''") + "'"


def literal(value: datetime) -> str:
    return f"TIMESTAMP '{value:%Y-%m-%d %H:%M:%S.%f}'"


def interval(value: timedelta) -> str:
    return f"INTERVAL '{int(value.total_seconds() * 1_000_000)} microseconds'"


def floor_to_grid(moment: datetime, step: timedelta) -> datetime:
    """The latest grid time at or before ``moment`` (grids start at the Unix epoch)."""
    return EPOCH + ((moment - EPOCH) // step) * step


def snapshot_sql(view: FeatureView, source: str, until: datetime) -> str:
    """Rows (entity_id, feature_ts, features...) of ``view`` from table ``source``.

    Rows at or after ``until`` are left out: they are the future as seen from ``until``.
    """
    if view.is_aggregate:
        return _aggregate_sql(view, source, until)
    return _attribute_sql(view, source, until)


def _events(view: FeatureView, source: str, until: datetime) -> str:
    ts = quote(view.timestamp)
    keys = " AND ".join(f"{quote(k)} IS NOT NULL" for k in view.keys)
    return (
        f"SELECT *, {entity_sql(view.keys)} AS _keel_entity, "
        f"CAST({ts} AS TIMESTAMP) AS _keel_ts FROM {source} "
        f"WHERE {keys} AND {ts} IS NOT NULL "
        f"AND CAST({ts} AS TIMESTAMP) < {literal(until)}"
    )


def _attribute_sql(view: FeatureView, source: str, until: datetime) -> str:
    names = ", ".join(quote(f) for f in view.features if isinstance(f, str))
    # ties at one timestamp: the row ingested last wins, the same everywhere
    return (
        f"SELECT _keel_entity AS entity_id, _keel_ts AS feature_ts, {names} "
        f"FROM ({_events(view, source, until)}) "
        "QUALIFY row_number() OVER (PARTITION BY _keel_entity, _keel_ts "
        "ORDER BY _keel_seq DESC) = 1"
    )


def _aggregate_sql(view: FeatureView, source: str, until: datetime) -> str:
    aggs = view.aggregations
    step = interval(view.step)
    partials = ", ".join(_partials(i, agg) for i, agg in enumerate(aggs))
    windows = ", ".join(
        f"w{i} AS (PARTITION BY entity_id ORDER BY bucket "
        f"ROWS BETWEEN {agg.span // view.step - 1} PRECEDING AND CURRENT ROW)"
        for i, agg in enumerate(aggs)
    )
    finals = ", ".join(_final(i, agg) for i, agg in enumerate(aggs))
    return f"""
        WITH ev AS ({_events(view, source, until)}),
        b AS (
            SELECT _keel_entity AS entity_id,
                   time_bucket({step}, _keel_ts, {literal(EPOCH)}) AS bucket, {partials}
            FROM ev GROUP BY ALL
        ),
        firsts AS (SELECT entity_id, min(bucket) AS first_bucket FROM b GROUP BY entity_id),
        grid AS (
            SELECT entity_id, unnest(range(first_bucket, {literal(until)}, {step})) AS bucket
            FROM firsts
        ),
        dense AS (SELECT * FROM grid LEFT JOIN b USING (entity_id, bucket))
        SELECT entity_id, bucket + {step} AS feature_ts, {finals}
        FROM dense
        WINDOW {windows}
    """


def _filter(agg: Aggregation) -> str:
    return f" FILTER (WHERE {agg.where})" if agg.where else ""


def _partials(i: int, agg: Aggregation) -> str:
    column = quote(agg.column) if agg.column else "*"
    where = _filter(agg)
    parts = [f"count({column}){where} AS p{i}_n"]
    if agg.fn in ("sum", "mean"):
        parts.append(f"sum({column}){where} AS p{i}_s")
    if agg.fn in ("min", "max"):
        parts.append(f"{agg.fn}({column}){where} AS p{i}_m")
    return ", ".join(parts)


def _final(i: int, agg: Aggregation) -> str:
    name = quote(agg.name)
    if agg.fn == "count":
        return f"coalesce(sum(p{i}_n) OVER w{i}, 0)::BIGINT AS {name}"
    if agg.fn == "sum":
        return f"coalesce(sum(p{i}_s) OVER w{i}, 0)::DOUBLE AS {name}"
    if agg.fn == "mean":
        return f"(sum(p{i}_s) OVER w{i} / nullif(sum(p{i}_n) OVER w{i}, 0))::DOUBLE AS {name}"
    return f"{agg.fn}(p{i}_m) OVER w{i} AS {name}"


def point_in_time_sql(labels: str, timestamp: str, joins: list[tuple[FeatureView, str]]) -> str:
    """Labels with each view's latest row at or before the label time, within its max age.

    Each view is joined on its own key columns, read from the label row. Only the views'
    columns are selected, one row per label row in the labels' order (``_keel_row``); a view
    with no usable row (or a null key) gives nulls and ``<view>__missing`` = true.
    """
    select = []
    sources = [f"(SELECT *, CAST({quote(timestamp)} AS TIMESTAMP) AS _keel_t FROM {labels}) l"]
    for i, (view, table) in enumerate(joins):
        alias = f"v{i}"
        fresh = _fresh(alias, view)
        for name in view.feature_names:
            select.append(f"CASE WHEN {fresh} THEN {alias}.{quote(name)} END AS {quote(name)}")
        select.append(f"NOT ({fresh}) AS {quote(view.name + '__missing')}")
        sources.append(
            f"ASOF LEFT JOIN {table} {alias} ON {entity_sql(view.keys, 'l')} = "
            f"{alias}.entity_id AND l._keel_t >= {alias}.feature_ts"
        )
    return f"SELECT {', '.join(select)} FROM {' '.join(sources)} ORDER BY l._keel_row"


def _fresh(alias: str, view: FeatureView) -> str:
    found = f"{alias}.feature_ts IS NOT NULL"
    if view.max_age is None:
        return found
    return f"({found} AND l._keel_t - {alias}.feature_ts <= {interval(view.max_age)})"
