"""What the prediction log says about traffic and performance, aggregated by DuckDB.

Only the segments that overlap the asked-for span are read, and only the columns an
aggregate needs, so a page costs the same on a large log as on a small one's last day.
Predictions still in a server's spool (a few seconds' worth) are not counted yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.project import Project

__all__ = ["Traffic", "log_files", "performance_series", "traffic_series", "traffic_summary"]


@dataclass(frozen=True)
class Traffic:
    """Requests over a span: how many, how fast, how often the fallback answered."""

    requests: int
    per_minute: float
    p50_ms: float | None
    p99_ms: float | None
    fallback_rate: float | None


def log_files(project: Project, since: float) -> list[Path]:
    """The committed segments of the project's prediction log that end after ``since``."""
    from keel.monitoring.cycle import open_log
    from keel.monitoring.segments import locations

    log = open_log(project)
    return locations([s for s in log.segments() if s.end >= since], log.store)


def _source(files: list[Path]) -> str:
    names = ", ".join("'" + str(path).replace("'", "''") + "'" for path in files)
    return f"read_parquet([{names}], union_by_name=true)"


def _query(files: list[Path], sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    import duckdb

    with duckdb.connect() as con:
        return con.execute(sql.replace("{log}", _source(files)), params).fetchall()


def _columns(files: list[Path]) -> set[str]:
    import duckdb

    with duckdb.connect() as con:
        found = con.execute(f"SELECT * FROM {_source(files)} LIMIT 0").description
    return {str(column[0]) for column in found}


def traffic_summary(files: list[Path], since: float, now: float) -> Traffic:
    """Counts, latency percentiles and fallback rate of predictions logged since ``since``."""
    if not files:
        return Traffic(0, 0.0, None, None, None)
    sql = (
        "SELECT count(*), quantile_cont(latency_ms, 0.5), quantile_cont(latency_ms, 0.99), "
        "avg(CASE WHEN fallback IS NULL THEN 0.0 ELSE 1.0 END) FROM {log} WHERE time >= ?"
    )
    count, p50, p99, fallback = _query(files, sql, [_moment(since)])[0]
    minutes = max((now - since) / 60.0, 1e-9)
    return Traffic(int(count), count / minutes, p50, p99, fallback if count else None)


def traffic_series(files: list[Path], since: float, bucket: str = "hour") -> dict[str, list[Any]]:
    """Per ``bucket`` (hour or day): requests, p99 latency and fallback rate."""
    empty: dict[str, list[Any]] = {"requests": [], "p99_ms": [], "fallback_rate": []}
    if not files:
        return empty
    sql = (
        f"SELECT date_trunc('{bucket}', time) AS b, count(*), quantile_cont(latency_ms, 0.99), "
        "avg(CASE WHEN fallback IS NULL THEN 0.0 ELSE 1.0 END) FROM {log} WHERE time >= ? "
        "GROUP BY b ORDER BY b"
    )
    for moment, count, p99, fallback in _query(files, sql, [_moment(since)]):
        t = _seconds(moment)
        empty["requests"].append((t, float(count)))
        empty["p99_ms"].append((t, p99))
        empty["fallback_rate"].append((t, fallback))
    return empty


_MATCH = (
    "CASE WHEN f.label IS NULL THEN NULL WHEN coalesce("
    "TRY_CAST(CAST(l.output AS VARCHAR) AS DOUBLE) = TRY_CAST(f.label AS DOUBLE), "
    "lower(CAST(l.output AS VARCHAR)) = lower(f.label)) THEN 1.0 ELSE 0.0 END"
)


def performance_series(
    files: list[Path], since: float, feedback: list[tuple[str, str]]
) -> dict[str, list[Any]]:
    """Per day: mean confidence (the model's own estimate) and realised accuracy.

    Realised accuracy compares the logged output with the ground truth sent to
    ``/v1/feedback`` for the same prediction id (numbers compared as numbers). One scan
    of the log computes both.
    """
    out: dict[str, list[Any]] = {"estimated": [], "realised": [], "labelled": []}
    if not files:
        return out
    columns = _columns(files)
    estimate = "avg(l.confidence)" if "confidence" in columns else "NULL"
    realised = f"avg({_MATCH})" if "output" in columns else "NULL"
    sql = (
        f"SELECT date_trunc('day', l.time) AS b, {estimate}, {realised}, count(f.label) "
        f"FROM {_source(files)} AS l LEFT JOIN labels AS f USING (prediction_id) "
        "WHERE l.time >= ? GROUP BY b ORDER BY b"
    )
    for moment, estimated, accuracy, labelled in _with_labels(sql, since, feedback):
        t = _seconds(moment)
        if estimated is not None:
            out["estimated"].append((t, estimated))
        if labelled:
            out["realised"].append((t, accuracy))
            out["labelled"].append((t, float(labelled)))
    return out


def _with_labels(sql: str, since: float, feedback: list[tuple[str, str]]) -> list[tuple[Any, ...]]:
    import duckdb
    import pandas as pd

    labels = pd.DataFrame(feedback, columns=["prediction_id", "label"], dtype="string")
    with duckdb.connect() as con:
        con.register("labels", labels)
        return con.execute(sql, [_moment(since)]).fetchall()


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _seconds(moment: Any) -> float:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return float(moment.timestamp())
    return float(moment)
