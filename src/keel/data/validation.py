"""Validate a batch: compile its checks, settle what the profile can, count the rest in
one shared pass, fetch examples only for failing checks, and compare with a reference.

``validate`` takes everything it needs as arguments (the batch, its profile, the clock,
the reference profile, the referenced sources' values loaded as DuckDB views), so the
same call serves ingestion, ``keel validate`` and tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from keel.data.batch import TABLE, Batch, quote, readable_by_rowid, records
from keel.data.checks import RowCheck, compile_suite, settle
from keel.data.history import count_keys, history_finding
from keel.data.model import Finding, Profile, Report, Severity, Status
from keel.data.stats import compare
from keel.schema import ReferenceCheck, SourceConfig

__all__ = ["EXAMPLES", "Context", "profile_findings", "validate"]

EXAMPLES = 20
"""Failing rows kept per failing check."""
_CHEAP = ("not_null", "range", "allowed", "not_future")
"""Kinds whose predicate is cheap to evaluate again to find failing rows."""


@dataclass(frozen=True)
class Context:
    """What a validation may consult besides the batch: the clock, the reference
    version's profile, views holding other sources' latest values (``source.column``
    -> view name in the batch's connection), and the table of keys the source's live
    versions hold (None before the first version)."""

    now: datetime
    reference: tuple[str, Profile] | None = None
    lookups: Mapping[str, str] = field(default_factory=dict)
    history: str | None = None


def validate(
    batch: Batch, source: str, config: SourceConfig, profile: Profile, context: Context
) -> Report:
    """Run every check of ``config`` on ``batch``; the report lists one finding per check."""
    kinds = {c.name: c.kind for c in profile.columns}
    suite = compile_suite(config, profile.schema, kinds, context.now, batch.con)
    row_checks = list(suite.row_checks)
    findings = list(suite.findings) + profile_findings(config, profile, context.now)
    for spec in config.checks.references:
        check, skipped = _reference(spec, profile, context.lookups)
        findings += skipped
        row_checks += check
    findings += _run(batch, row_checks, profile)
    keys, name = config.keys, config.key_name
    if name is not None and all(profile.column(c) is not None for c in keys):
        counts = None if context.history is None else count_keys(batch, keys, context.history)
        findings.append(history_finding(name, config.key_policy, counts))
    reference_id = None
    stats = config.checks.reference
    if stats is not None and context.reference is not None:
        reference_id, reference_profile = context.reference
        findings += compare(profile, reference_profile, stats)
    elif stats is not None:
        message = f"skipped: no reference version ({stats.against}) to compare with yet"
        findings.append(Finding("stats", "statistics", stats.severity, "skip", message))
    return Report(source, profile.rows, tuple(findings), reference_id)


def profile_findings(config: SourceConfig, profile: Profile, now: datetime) -> list[Finding]:
    """Checks decided by the profile alone: maximum null rate and freshness."""
    found: list[Finding] = []
    for name, spec in config.checks.columns.items():
        column = profile.column(name)
        if column is None:
            continue
        if spec.max_null_rate is not None:
            failed = column.null_rate > spec.max_null_rate
            message = f"{name} null rate {column.null_rate:.2%} (max {spec.max_null_rate:.2%})"
            status: Status = "fail" if failed else "pass"
            found.append(
                Finding(
                    f"{name}.max_null_rate",
                    "max_null_rate",
                    spec.severity,
                    status,
                    message,
                    name,
                    column.nulls if failed else 0,
                    rows=column.nulls if failed else 0,
                )
            )
        if spec.freshness is not None:
            found.append(_freshness(name, column.max, spec.freshness, spec.severity, now))
    return found


def _freshness(
    name: str, newest: object, limit: timedelta, severity: Severity, now: datetime
) -> Finding:
    check = f"{name}.freshness"
    if not isinstance(newest, str):
        message = f"{name} has no timestamps to judge freshness by"
        return Finding(check, "freshness", severity, "fail", message, name, 1)
    age = now - datetime.fromisoformat(newest).replace(tzinfo=None)
    status: Status = "fail" if age > limit else "pass"
    message = f"newest {name} is {newest} ({_days(age.total_seconds())} old, limit {limit})"
    return Finding(check, "freshness", severity, status, message, name, int(status == "fail"))


def _days(seconds: float) -> str:
    return f"{seconds / 86400:.1f} days" if seconds >= 86400 else f"{seconds / 3600:.1f} hours"


def _reference(
    spec: ReferenceCheck, profile: Profile, lookups: Mapping[str, str]
) -> tuple[list[RowCheck], list[Finding]]:
    name = f"reference:{spec.column}->{spec.to}"
    if profile.column(spec.column) is None:
        message = f"cannot check references: column '{spec.column}' is missing"
        return [], [Finding(name, "reference", spec.severity, "fail", message, spec.column, 1)]
    view = lookups.get(spec.to)
    if view is None:
        message = f"skipped: {spec.to.split('.')[0]} has no published version to check against"
        return [], [Finding(name, "reference", spec.severity, "skip", message, spec.column)]
    col = f"{quote(spec.column)}::VARCHAR"
    predicate = f"{quote(spec.column)} IS NOT NULL AND {col} NOT IN (SELECT value FROM {view})"
    describe = f"{spec.column} values missing from {spec.to}"
    return [RowCheck(name, "reference", spec.severity, describe, spec.column, predicate)], []


def _run(batch: Batch, checks: list[RowCheck], profile: Profile) -> list[Finding]:
    counts: dict[str, int] = {}
    keys: dict[str, list[str]] = {}
    shared: list[RowCheck] = []
    stepped: list[RowCheck] = []
    by_id = readable_by_rowid(profile.schema)
    for check in checks:
        known = settle(check, profile)
        if known is not None:
            counts[check.name] = known
        elif by_id and _steps_in_pass(batch, check, profile):
            stepped.append(check)
        elif check.count_sql is not None:
            counts[check.name], keys[check.name] = _count_own(batch, check)
        else:
            shared.append(check)
    shared_counts, first_rows, steps = _count_shared(batch, shared, by_id, stepped)
    counts.update(shared_counts)
    for check in stepped:
        counts[check.name], keys[check.name] = _from_steps(batch, check, *steps[check.name])
    plain = [
        (c, min(EXAMPLES, counts[c.name]))
        for c in checks
        if counts[c.name] and c.name not in first_rows and c.predicate and not c.examples_sql
    ]
    first_rows.update(_first_row_ids(batch, plain) if by_id else {})
    found = _rows_at(batch, sorted({r for rows in first_rows.values() for r in rows}))
    shown = {name: tuple(found[r] for r in rows) for name, rows in first_rows.items()}
    return [
        _judge(batch, c, counts[c.name], keys.get(c.name, []), shown.get(c.name)) for c in checks
    ]


def _steps_in_pass(batch: Batch, check: RowCheck, profile: Profile) -> bool:
    """Whether the shared pass counts this check's steps in arrival order: an ordering
    always; a uniqueness check when its column holds no nulls (so every row's neighbour
    is the value before it) and its leading rows arrive sorted."""
    if check.lagged is None:
        return False
    if check.kind == "ordered":
        return True
    column = profile.column(check.lagged)
    if column is None or column.nulls or check.probe_sql is None:
        return False
    return not batch.scalar(check.probe_sql)


def _from_steps(
    batch: Batch, check: RowCheck, backwards: int, repeats: int
) -> tuple[int, list[str]]:
    """Violations and repeated keys from a column's steps back and in place."""
    if check.kind == "ordered":
        return backwards, []
    if backwards:  # not sorted after all: group
        assert check.count_sql is not None
        row = batch.con.execute(check.count_sql).fetchone() or (0, [])
        return int(row[0] or 0), list(row[1] or [])
    if not repeats or check.repeats_sql is None:
        return 0, []
    return repeats, [row[0] for row in batch.con.execute(check.repeats_sql).fetchall()]


def _count_own(batch: Batch, check: RowCheck) -> tuple[int, list[str]]:
    """Violations and repeated keys of a check with its own query; a uniqueness check
    streams its column when the leading rows arrive sorted, and groups if it is not."""
    streamed, probe = check.sorted_sql, check.probe_sql
    if streamed is not None and probe is not None and not batch.scalar(probe):
        backwards, repeats = batch.con.execute(streamed).fetchone() or (1, 0)
        return _from_steps(batch, check, int(backwards or 0), int(repeats or 0))
    assert check.count_sql is not None
    row = batch.con.execute(check.count_sql).fetchone() or (0,)
    return int(row[0] or 0), list(row[1] or []) if len(row) > 1 else []


def _count_shared(
    batch: Batch, checks: list[RowCheck], by_id: bool, stepped: list[RowCheck]
) -> tuple[dict[str, int], dict[str, list[int]], dict[str, tuple[int, int]]]:
    """One pass counting every shared check; each predicate is evaluated once, into a
    column. Checks whose predicate is dear to evaluate again (a regex, a rule, a
    reference, a cast) also keep their first ``EXAMPLES`` failing row ids; the cheap ones
    find their examples afterwards with a LIMIT query, which stops at the first few.
    The same pass counts, for each ``stepped`` check, the rows whose ``lagged`` column
    is below (backwards) and equal to (repeats) the row before in arrival order.
    ``by_id``: no column of the batch shadows DuckDB's row id."""
    if not checks and not stepped:
        return {}, {}, {}
    if not by_id:
        counts = {c.name: int(n or 0) for c, n in zip(checks, _counts(batch, checks), strict=True)}
        return counts, {}, {}
    columns = ["rowid AS r"] + [f"({c.predicate}) AS f{i}" for i, c in enumerate(checks)]
    for j, check in enumerate(stepped):
        col = quote(str(check.lagged))
        columns.append(f"{col} AS v{j}, lag({col}) OVER () AS p{j}")
    kept = [i for i, c in enumerate(checks) if c.kind not in _CHEAP]
    selects = [f"count_if(f{i})" for i in range(len(checks))]
    selects += [f"min(r, {EXAMPLES}) FILTER (WHERE f{i})" for i in kept]
    selects += [f"count_if(v{j} < p{j}), count_if(v{j} = p{j})" for j in range(len(stepped))]
    sql = f"SELECT {', '.join(selects)} FROM (SELECT {', '.join(columns)} FROM {TABLE})"
    row = batch.con.execute(sql).fetchone() or ()
    counts = {c.name: int(row[i] or 0) for i, c in enumerate(checks)}
    listed = row[len(checks) : len(checks) + len(kept)]
    first = {checks[i].name: list(rows) for i, rows in zip(kept, listed, strict=True) if rows}
    tail = row[len(checks) + len(kept) :]
    steps = {
        c.name: (int(tail[2 * j] or 0), int(tail[2 * j + 1] or 0)) for j, c in enumerate(stepped)
    }
    return counts, first, steps


def _counts(batch: Batch, checks: list[RowCheck]) -> tuple[Any, ...]:
    selects = ", ".join(f"count_if({c.predicate})" for c in checks)
    return batch.con.execute(f"SELECT {selects} FROM {TABLE}").fetchone() or ()


def _first_row_ids(batch: Batch, wanted: list[tuple[RowCheck, int]]) -> dict[str, list[int]]:
    """The row ids of the first failing rows of each check, in arrival order, from one
    query: a LIMIT per check (each stops at its first rows), tagged with the check. Only
    the ids are read; the rows themselves come with the shared pass's in one lookup."""
    if not wanted:
        return {}
    parts = [
        f"(SELECT {i} AS k, rowid AS r FROM {TABLE} WHERE {c.predicate} LIMIT {n})"
        for i, (c, n) in enumerate(wanted)
    ]
    found: dict[int, list[int]] = {i: [] for i in range(len(wanted))}
    for check, row in batch.con.execute(" UNION ALL ".join(parts) + " ORDER BY k, r").fetchall():
        found[check].append(int(row))
    return {c.name: found[i] for i, (c, _) in enumerate(wanted)}


def _rows_at(batch: Batch, rowids: list[int]) -> dict[int, dict[str, Any]]:
    """The rows with these row ids (all present), in one pass."""
    if not rowids:
        return {}
    listed = ", ".join(str(int(r)) for r in rowids)
    within = f"rowid BETWEEN {int(rowids[0])} AND {int(rowids[-1])}"  # skips row groups
    found = batch.records(
        f"SELECT * FROM {TABLE} WHERE {within} AND rowid IN ({listed}) ORDER BY rowid"
    )
    return dict(zip(rowids, found, strict=True))


def _judge(
    batch: Batch,
    check: RowCheck,
    violations: int,
    keys: list[str],
    shown: tuple[dict[str, Any], ...] | None,
) -> Finding:
    """The finding; ``shown`` holds the failing rows when the shared pass found them."""
    if violations == 0:
        return Finding(check.name, check.kind, check.severity, "pass", "ok", check.column, rows=0)
    examples = shown
    if examples is None:
        # Stop reading as soon as every violating row is found (duplicates show every copy).
        sql = check.examples(EXAMPLES if check.kind == "unique" else min(EXAMPLES, violations))
        params = {"keys": keys} if "$keys" in sql else None
        examples = tuple(records(batch.con.execute(sql, params)))
    rows = "row" if violations == 1 else "rows"
    message = f"{violations} {rows}: {check.describe}"
    return Finding(
        check.name, check.kind, check.severity, "fail", message, check.column, violations,
        examples, rows=violations,
    )  # fmt: skip
