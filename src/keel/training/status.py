"""``keel status``: the on-call answer in one read, using the standard library only.

What runs in production, trained when, on what data, with which metrics, how it compares
with the previous production model, and what is in shadow or canary. This module must
stay cheap to import: no SQLAlchemy, pydantic, pandas or scikit-learn; it reads keel.yaml
for the store URL alone and talks to SQLite through ``sqlite3`` (or PostgreSQL through
psycopg). Every query is served by an index, so the answer costs the same with 100,000
versions as with ten.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from keel.errors import ConfigError, ProjectError, StoreUnavailable

__all__ = ["read_status", "render_status", "run_status", "store_url_of"]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_COLUMNS = (
    "version, name, source, status, status_at, created_at, created_by, artifact, size_bytes, "
    "data_ref, data_rows, data_start, data_end, metrics, gate_passed"
)
_BY_STATUS = f"SELECT {_COLUMNS} FROM keel_model_versions WHERE status = ? ORDER BY version DESC"
_BY_VERSION = f"SELECT {_COLUMNS} FROM keel_model_versions WHERE version = ?"
_LATEST = f"SELECT {_COLUMNS} FROM keel_model_versions ORDER BY version DESC LIMIT 1"
_DEPLOYED = (
    "SELECT at, actor, reason, forced FROM keel_model_events "
    "WHERE to_status = 'production' AND version = ? ORDER BY id DESC LIMIT 1"
)
_PREVIOUS = (
    "SELECT version FROM keel_model_events WHERE to_status = 'production' AND version <> ? "
    "ORDER BY id DESC LIMIT 1"
)
_COUNT = "SELECT count(*) FROM keel_model_versions"
_RECORD = "SELECT record FROM keel_model_records WHERE version = ?"
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")
_ROLLOUT = (
    "SELECT r.version, r.kind, r.share, r.state, r.updated_at, "
    "(SELECT e.reason FROM keel_model_events e WHERE e.version = r.version "
    "ORDER BY e.id DESC LIMIT 1) AS reason "
    "FROM keel_rollouts r ORDER BY r.updated_at DESC LIMIT 1"
)


def read_status(start: Path | None = None) -> dict[str, Any]:
    """The status of the project at or above ``start`` (default: the working directory)."""
    root = _find_root(start or Path.cwd())
    name, url = store_url_of(root)
    connection = _connect(url)
    if connection is None:
        return _empty(name)
    try:
        return {"project": name, **_answer(_Query(connection, url))}
    finally:
        connection.close()


def render_status(data: dict[str, Any]) -> list[str]:
    """The status screen as plain lines, for people."""
    lines = [f"{data['project']}: {data['versions']} registered versions"]
    production = data["production"]
    if production is None:
        lines.append("production: none yet (`keel train`, then `keel deploy latest`)")
    else:
        lines += _production_lines(production)
    previous = data["previous_production"]
    if previous is not None:
        deltas = ", ".join(f"{k} {v:+.4f}" for k, v in (data["comparison"] or {}).items())
        lines.append(f"previous production: version {previous['version']}; change: {deltas}")
    for kind in ("shadow", "canary"):
        lines.append(f"{kind}: " + (", ".join(str(r["version"]) for r in data[kind]) or "none"))
    latest = data["latest"]
    if latest is not None:
        gated = {True: "passed", False: "failed", None: "not gated"}[latest["gate_passed"]]
        lines.append(f"latest: version {latest['version']} ({latest['status']}, gate {gated})")
    rollout = data.get("rollout")
    if rollout is not None:
        lines.append(_rollout_line(rollout))
    alerts = data["alerts"]
    lines.append(f"alerts: {_alerts_text(alerts)}")
    return lines


def _rollout_line(rollout: dict[str, Any]) -> str:
    where = f" at {rollout['share']:g}% of traffic" if rollout["kind"] == "canary" else ""
    state = str(rollout["state"]).replace("_", " ")
    return (
        f"last rollout: version {rollout['version']} as {rollout['kind']}{where}, {state} "
        f"({_when(rollout['updated_at'])}: {rollout['reason']})"
    )


def run_status(argv: list[str]) -> int:
    """``keel status [--json] [--project DIR]`` without the CLI framework: the fast path."""
    from keel.errors import KeelError

    project = None
    if "--project" in argv or "-p" in argv:
        flag = "--project" if "--project" in argv else "-p"
        position = argv.index(flag) + 1
        project = Path(argv[position]) if position < len(argv) else None
    try:
        data = read_status(project)
    except KeelError as error:
        sys.stderr.write(f"error: {error}\n")
        return 1
    if "--json" in argv:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    else:
        sys.stdout.write("\n".join(render_status(data)) + "\n")
    return 0


def store_url_of(root: Path) -> tuple[str, str]:
    """The project name and metadata store URL, as ``keel.project.Project`` resolves it."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = (root / "keel.yaml").read_text(encoding="utf-8")
    try:
        raw = yaml.load(text, Loader=loader) or {}  # a safe loader, C-accelerated if there
    except yaml.YAMLError:
        raw = None
    if not isinstance(raw, dict):
        raise ConfigError(f"{root / 'keel.yaml'} is not valid; run `keel config check` to see why")
    name = str(raw.get("name", "keel-project"))
    url = os.environ.get("KEEL_STORE_URL") or raw.get("store")
    if not url:
        return name, f"sqlite:///{root / '.keel' / 'keel.db'}"
    url = _ENV.sub(lambda m: os.environ.get(m.group(1), ""), str(url))
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_absolute():
        return name, f"sqlite:///{root / url.removeprefix('sqlite:///')}"
    return name, url


class _Query:
    """Runs ``?``-style SQL on sqlite3 or psycopg and returns rows as dicts."""

    def __init__(self, connection: Any, url: str) -> None:
        self.connection = connection
        self.postgres = not url.startswith("sqlite")

    def all(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        if self.postgres:
            sql = sql.replace("?", "%s")
        cursor = self.connection.cursor()
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def one(self, sql: str, *params: Any) -> dict[str, Any] | None:
        rows = self.all(sql + ("" if "LIMIT" in sql else " LIMIT 1"), *params)
        return rows[0] if rows else None


def _answer(query: _Query) -> dict[str, Any]:
    production = query.one(_BY_STATUS, "production")
    previous = None
    if production is not None:
        production["deployed"] = query.one(_DEPLOYED, production["version"])
        production["data_lineage"] = _data_lineage(query, production["version"])
        found = query.one(_PREVIOUS, production["version"])
        previous = query.one(_BY_VERSION, found["version"]) if found else None
    count = query.one(_COUNT)
    return {
        "production": _shape(production),
        "previous_production": _shape(previous),
        "comparison": _compare(production, previous),
        "shadow": [_shape(row) for row in query.all(_BY_STATUS + " LIMIT 5", "shadow")],
        "canary": [_shape(row) for row in query.all(_BY_STATUS + " LIMIT 5", "canary")],
        "latest": _shape(query.one(_LATEST)),
        "versions": 0 if count is None else next(iter(count.values())),
        "alerts": _open_alerts(query),
        "rollout": _last_rollout(query),
    }


_OPEN_ALERTS = (
    "SELECT severity, count(*) AS n FROM keel_alerts "
    "WHERE status IN ('open', 'acknowledged') GROUP BY severity ORDER BY severity"
)


def _last_rollout(query: _Query) -> dict[str, Any] | None:
    """The newest shadow or canary rollout and how it stands (None: none yet)."""
    try:
        return query.one(_ROLLOUT)
    except Exception:  # an older store without the delivery table
        query.connection.rollback()
        return None


def _open_alerts(query: _Query) -> dict[str, int] | None:
    """Open (or acknowledged) alerts by severity; None where monitoring has no table."""
    try:
        return {row["severity"]: int(row["n"]) for row in query.all(_OPEN_ALERTS)}
    except Exception:  # an older store without the monitoring tables: nothing to show
        query.connection.rollback()
        return None


def _alerts_text(alerts: dict[str, int] | None) -> str:
    if alerts is None:
        return "monitoring is not set up"
    if not alerts:
        return "none open"
    counts = ", ".join(f"{n} {severity}" for severity, n in sorted(alerts.items()))
    return f"{sum(alerts.values())} open ({counts})"


def _data_lineage(query: _Query, version: int) -> dict[str, Any] | None:
    """The data versions a model was trained on, from its run record (None: not a source)."""
    row = query.one(_RECORD, version)
    lineage = (json.loads(row["record"]).get("data") or {}).get("lineage") if row else None
    return lineage if isinstance(lineage, dict) else None


def _production_lines(production: dict[str, Any]) -> list[str]:
    deployed = production.get("deployed") or {}
    return [
        f"production: version {production['version']} since {_when(deployed.get('at'))} "
        f"by {deployed.get('actor', '-')} ({deployed.get('reason', '')})",
        f"  trained {_when(production['created_at'])} on {production['data_ref']}",
        "  data: " + _data_text(production),
        "  metrics: " + metrics_text(production["metrics"]),
    ]


def _data_text(version: dict[str, Any]) -> str:
    """What a version was trained on: ``flights@3f2a1b2c3d4e (2 versions, 600 rows, ...)``."""
    span = _span_text(version.get("data_start"), version.get("data_end"))
    lineage = version.get("data_lineage")
    if not lineage:
        return f"{version['data_rows']:,} rows" + (f", {span}" if span else "")
    count = len(lineage.get("versions", ()))
    parts = [f"{count} version{'' if count == 1 else 's'}", f"{lineage['rows']:,} rows"]
    return f"{version['data_ref']} ({', '.join([*parts, *([span] if span else [])])})"


def _span_text(start: str | None, end: str | None) -> str | None:
    if start is None and end is None:
        return None
    return f"{_day(start)} to {_day(end)}"


def _day(value: str | None) -> str:
    """A timestamp as its date; anything else as it is."""
    if value is None:
        return "?"
    return value[:10] if _DAY.match(value) else value


def metrics_text(metrics: dict[str, Any]) -> str:
    """``name value`` pairs, sorted, four decimals; undefined metrics as n/a."""
    return ", ".join(
        f"{k} {'n/a' if v is None else f'{v:.4f}'}" for k, v in sorted(metrics.items())
    )


def _when(timestamp: float | None) -> str:
    from datetime import UTC, datetime

    if timestamp is None:
        return "-"
    return f"{datetime.fromtimestamp(timestamp, UTC):%Y-%m-%d %H:%M} UTC"


def _shape(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    row = dict(row)
    row["metrics"] = json.loads(row["metrics"])
    row["gate_passed"] = None if row["gate_passed"] is None else bool(row["gate_passed"])
    if row.get("deployed") is not None:
        row["deployed"]["forced"] = bool(row["deployed"]["forced"])
    return row


def _compare(
    production: dict[str, Any] | None, previous: dict[str, Any] | None
) -> dict[str, float] | None:
    if production is None or previous is None:
        return None
    now, before = json.loads(production["metrics"]), json.loads(previous["metrics"])
    return {
        name: round(now[name] - before[name], 6)
        for name in sorted(now)
        if isinstance(now.get(name), float | int) and isinstance(before.get(name), float | int)
    }


def _empty(name: str) -> dict[str, Any]:
    return {
        "project": name,
        "production": None,
        "previous_production": None,
        "comparison": None,
        "shadow": [],
        "canary": [],
        "latest": None,
        "versions": 0,
        "alerts": None,
        "rollout": None,
    }


def _connect(url: str) -> Any:
    """A DB-API connection, or None when there is no registry yet."""
    if url.startswith("sqlite"):
        return _connect_sqlite(url)
    return _connect_postgres(url)


def _connect_sqlite(url: str) -> Any:
    import sqlite3

    path = Path(url.removeprefix("sqlite:///"))
    if not path.is_file():
        return None
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        connection.execute("SELECT 1 FROM keel_model_versions LIMIT 1")
    except sqlite3.DatabaseError as error:
        if "no such table" in str(error):
            return None
        raise StoreUnavailable(f"cannot read the metadata store {path} ({error})") from None
    return connection


def _connect_postgres(url: str) -> Any:
    try:
        import psycopg
    except ImportError:
        from keel.errors import MissingExtraError

        raise MissingExtraError("psycopg", "postgres") from None
    conninfo = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url)
    try:
        connection = psycopg.connect(conninfo, connect_timeout=5, autocommit=True)
    except psycopg.Error as error:
        reason = str(error).strip().splitlines()[0]
        raise StoreUnavailable(f"cannot reach the metadata store ({reason})") from None
    try:
        connection.execute("SELECT 1 FROM keel_model_versions LIMIT 1")
    except psycopg.errors.UndefinedTable:
        connection.close()
        return None
    return connection


def _find_root(start: Path) -> Path:
    start = start.resolve()
    if start.is_file():
        return start.parent
    for folder in (start, *start.parents):
        if (folder / "keel.yaml").is_file():
            return folder
    raise ProjectError(
        f"no keel.yaml in {start} or any folder above it; run `keel init` to create a "
        "project or pass --project DIR"
    )
