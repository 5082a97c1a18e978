"""``keel status``: the on-call answer in one read.

What runs in production, trained when, on what data (for a source: which data versions,
their rows and dates, read from the production model's run record), with which metrics,
how it compares with the previous production model, and what is in shadow or canary.

The store is the one every command uses: keel.yaml is found, parsed and interpolated by
``keel.configtext`` (as ``Project.open`` does, so a missing ``${VAR}`` is the same
``ConfigError``) and ``configtext.store_url`` applies ``KEEL_STORE_URL`` and the SQLite
default. Status reads only the store URL from the file, so it does not validate the file
against the keel.yaml schema; ``keel config check`` does that.
It is read through each layer's public read functions (``keel.training.reads``,
``keel.monitoring.reads.open_alert_counts``, ``keel.delivery.reads.last_rollout``),
whose queries are built from the layers' tables, over ``keel.store.reads.reading``: a
read-only connection that never creates or migrates a store. No pandas, NumPy or
scikit-learn is imported.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from keel.configtext import config_path, parse_text, read_text, store_url
from keel.delivery.reads import last_rollout
from keel.monitoring.reads import open_alert_counts
from keel.store.reads import reading
from keel.training.reads import (
    count_versions,
    last_event,
    previous_production_version,
    read_run_record,
    read_versions,
)
from keel.training.tables import model_versions

__all__ = ["data_text", "metrics_text", "read_status", "render_status", "run_status", "status_of"]

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")


def read_status(start: Path | str | None = None) -> dict[str, Any]:
    """The status of the project at or above ``start`` (default: the working directory)."""
    path = config_path(start)
    config = parse_text(read_text(path), path).data
    name = str(config.get("name") or "keel-project")  # keel.schema.KeelConfig's default
    with reading(store_url(path.parent, config.get("store")), needs=model_versions) as connection:
        return _empty(name) if connection is None else status_of(connection, name)


def status_of(connection: sa.Connection, project: str) -> dict[str, Any]:
    """The status read over an open ``connection`` to the store of ``project`` (its name)."""
    production = _newest(read_versions(connection, status="production", limit=1))
    previous = None
    if production is not None:
        production["deployed"] = last_event(connection, production["version"], "production")
        production |= _training_data(read_run_record(connection, production["version"]))
        found = previous_production_version(connection, production["version"])
        previous = None if found is None else _newest(read_versions(connection, version=found))
    return {
        "project": project,
        "production": _shape(production),
        "previous_production": _shape(previous),
        "comparison": _compare(production, previous),
        "shadow": [_shape(row) for row in read_versions(connection, status="shadow", limit=5)],
        "canary": [_shape(row) for row in read_versions(connection, status="canary", limit=5)],
        "latest": _shape(_newest(read_versions(connection, limit=1))),
        "versions": count_versions(connection),
        "alerts": open_alert_counts(connection),
        "rollout": _rollout(connection),
    }


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
    """``keel status --json [--project DIR]`` without the CLI framework: the fast path
    ``keel.cli.entry`` takes. Its JSON is the full command's, byte for byte."""
    import orjson

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
        options = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
        sys.stdout.write(orjson.dumps(data, default=str, option=options).decode() + "\n")
    else:
        sys.stdout.write("\n".join(render_status(data)) + "\n")
    return 0


def _alerts_text(alerts: dict[str, int] | None) -> str:
    if alerts is None:
        return "monitoring is not set up"
    if not alerts:
        return "none open"
    counts = ", ".join(f"{n} {severity}" for severity, n in sorted(alerts.items()))
    return f"{sum(alerts.values())} open ({counts})"


def _training_data(record: dict[str, Any] | None) -> dict[str, Any]:
    """From a model's run record: the data versions it read (None: not a source) and how
    many rows had no label."""
    data = (record or {}).get("data") or {}
    lineage = data.get("lineage")
    return {
        "data_lineage": lineage if isinstance(lineage, dict) else None,
        "missing_labels": data.get("missing_labels"),
    }


def _newest(found: list[dict[str, Any]]) -> dict[str, Any] | None:
    return found[0] if found else None


def _rollout(connection: sa.Connection) -> dict[str, Any] | None:
    """The newest shadow or canary rollout with the reason of its version's last change."""
    rollout = last_rollout(connection)
    if rollout is None:
        return None
    event = last_event(connection, rollout["version"])
    return {**rollout, "reason": None if event is None else event["reason"]}


def _production_lines(production: dict[str, Any]) -> list[str]:
    deployed = production.get("deployed") or {}
    return [
        f"production: version {production['version']} since {_when(deployed.get('at'))} "
        f"by {deployed.get('actor', '-')} ({deployed.get('reason', '')})",
        f"  trained {_when(production['created_at'])} on {production['data_ref']}",
        "  data: " + data_text(production),
        "  metrics: " + metrics_text(production["metrics"]),
    ]


def data_text(version: dict[str, Any]) -> str:
    """What a version was trained on: ``flights@3f2a1b2c3d4e (2 versions, 600 rows, ...)``."""
    span = _span_text(version.get("data_start"), version.get("data_end"))
    missing = version.get("missing_labels")
    unlabelled = [f"{missing:,} without a label"] if missing else []
    lineage = version.get("data_lineage")
    if not lineage:
        rows = f"{version['data_rows']:,} {'labelled rows' if missing else 'rows'}"
        return ", ".join([rows, *unlabelled, *([span] if span else [])])
    count = len(lineage.get("versions", ()))
    parts = [f"{count} version{'' if count == 1 else 's'}", f"{lineage['rows']:,} rows"]
    parts += [*([span] if span else []), *unlabelled]
    return f"{version['data_ref']} ({', '.join(parts)})"


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
