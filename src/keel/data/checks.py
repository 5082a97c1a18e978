"""Compile a source's checks into SQL-countable row checks plus findings known at once.

``compile_suite`` is pure: from the checks in keel.yaml, the batch's schema and the clock
it returns the row checks to count and the findings decided without touching a row
(missing columns, retyped columns, bad rules). ``settle`` decides a row check from the
profile alone when it can (no nulls, min and max within range, every category known),
so only checks the profile cannot decide cost a pass over the rows.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, replace
from datetime import datetime

import duckdb

from keel.data.batch import TABLE, key_present, key_sql, quote, readable_by_rowid, sql_literal
from keel.data.model import Finding, Profile, Severity
from keel.data.rules import RuleError, never_false, to_sql
from keel.schema import ColumnCheck, RuleCheck, SourceConfig

__all__ = ["RowCheck", "Suite", "compile_suite", "settle"]

_ACCEPTS = {
    "int": {"int"},
    "float": {"int", "float"},
    "string": {"string"},
    "category": {"string", "int", "bool"},
    "bool": {"bool"},
    "timestamp": {"timestamp"},
    "date": {"date"},
}
_CASTS = {"int": "BIGINT", "float": "DOUBLE", "bool": "BOOLEAN", "timestamp": "TIMESTAMP"}
_CASTS["date"] = "DATE"
_SORTABLE = ("int", "string", "date", "timestamp")
"""Kinds whose order agrees with equality, so a sorted column's repeats are neighbours."""
_PROBE_ROWS = 20_000
"""Leading rows that must arrive sorted before a whole column is streamed for repeats."""
_LITERAL = frozenset(string.ascii_letters + string.digits + " _-:/@#,;=%&!~'\"<>")
"""Characters a regex and a GLOB pattern both read as themselves."""
_ESCAPED = frozenset(".-_/+(){}|^$")
"""Characters a regex reads as themselves after a backslash and a GLOB pattern bare."""
_MEMBERS = frozenset(string.ascii_letters + string.digits + "_")
_RANGES = (string.ascii_lowercase, string.ascii_uppercase, string.digits)
_ATOM = re.compile(r"\\d|\\.|\[[^\]]*\]|.", re.DOTALL)
_REPEAT = re.compile(r"\{([0-9]{1,3})(?:,([0-9]{1,3}))?\}")


@dataclass(frozen=True)
class RowCheck:
    """A check whose violations are counted over rows: by ``predicate`` in the shared
    pass, or by its own ``count_sql``; ``examples_sql`` selects failing rows.

    A uniqueness check also has ``sorted_sql``, one streaming pass in arrival order that
    counts the same repeats when the column arrives sorted (then repeats are neighbours),
    ``repeats_sql``, the first 20 repeated values of such a column, and ``probe_sql``,
    which tells from the leading rows whether streaming is worth trying. ``lagged`` names
    the column whose steps from each row to the next in arrival order decide the check
    (a sorted uniqueness check, an ordering without ``within``), so that validation can
    count them in its shared pass."""

    name: str
    kind: str
    severity: Severity
    describe: str
    column: str | None = None
    predicate: str | None = None
    count_sql: str | None = None
    examples_sql: str = ""
    settles_on: str | None = None
    settle_args: tuple[object, ...] = ()
    sorted_sql: str | None = None
    probe_sql: str | None = None
    repeats_sql: str | None = None
    lagged: str | None = None

    def examples(self, limit: int) -> str:
        base = self.examples_sql or f"SELECT * FROM {TABLE} WHERE {self.predicate}"
        return f"{base} LIMIT {limit}"


@dataclass(frozen=True)
class Suite:
    """Row checks still to count, and findings already decided."""

    row_checks: tuple[RowCheck, ...] = ()
    findings: tuple[Finding, ...] = ()


def compile_suite(
    config: SourceConfig,
    schema: dict[str, str],
    kinds: dict[str, str],
    now: datetime,
    con: duckdb.DuckDBPyConnection | None = None,
) -> Suite:
    """The row checks and immediate findings for a batch with ``schema`` (name -> type);
    ``con`` (the batch's connection) is where rules are tried on a row of nulls."""
    checks: list[RowCheck] = []
    findings: list[Finding] = list(_extra_columns(config, schema))
    by_id = readable_by_rowid(schema)
    for name, spec in _column_specs(config).items():
        if name not in schema:
            findings.append(_missing(name, spec.severity, config.key_name, config.keys))
            continue
        found, row = _type_check(name, spec, schema[name], kinds[name])
        findings += found
        typed = _typed(name, spec, kinds[name])
        checks += row + _column_checks(name, spec, typed, kinds[name], now, by_id)
    if len(config.keys) > 1 and all(k in schema for k in config.keys):
        checks.append(_unique_key(config.keys, config.checks.columns))
    for rule in config.checks.rules:
        try:
            checks.append(_rule(rule, schema, con))
        except RuleError as error:
            findings.append(_broken(f"rule:{rule.name}", "rule", rule.severity, str(error)))
    ordered = config.checks.ordered
    if ordered is not None:
        found, row = _ordered(ordered.by, ordered.within, ordered.severity, schema)
        findings += found
        checks += row
    return Suite(tuple(checks), tuple(findings))


def _rule(
    rule: RuleCheck, schema: dict[str, str], con: duckdb.DuckDBPyConnection | None
) -> RowCheck:
    predicate = f"NOT coalesce(({to_sql(rule.expr, schema, con)}), TRUE)"
    describe = f"rule {rule.expr!r} is false"
    return RowCheck(f"rule:{rule.name}", "rule", rule.severity, describe, predicate=predicate,
                    settles_on="rule", settle_args=(rule.expr,))  # fmt: skip


def settle(check: RowCheck, profile: Profile) -> int | None:
    """The violation count if the profile alone decides it, else None."""
    if check.settles_on == "rule":
        return 0 if never_false(str(check.settle_args[0]), _bounds(profile)) else None
    column = profile.column(check.column) if check.column else None
    if column is None or check.settles_on is None:
        return None
    if check.settles_on == "nulls":
        return column.nulls
    if check.settles_on == "allowed" and column.top_complete:
        return sum(n for value, n in column.top if value not in check.settle_args)
    if check.settles_on == "range" and column.kind in ("int", "float"):
        return 0 if _within(column.min, column.max, check.settle_args) else None
    if check.settles_on == "not_future" and column.kind == "timestamp":
        newest = column.max
        return 0 if newest is None or str(newest) <= str(check.settle_args[0]) else None
    return None


def _bounds(profile: Profile) -> dict[str, tuple[str, object, object]]:
    """Each column's DuckDB type, min and max (None where unknown)."""
    return {c.name: (c.type, c.min, c.max) for c in profile.columns}


def _within(low: object, high: object, bounds: tuple[object, ...]) -> bool:
    floor, ceiling = bounds
    if low is None or high is None:
        return True  # no values at all
    above = floor is None or float(low) >= float(floor)  # type: ignore[arg-type]
    below = ceiling is None or float(high) <= float(ceiling)  # type: ignore[arg-type]
    return above and below


def _column_specs(config: SourceConfig) -> dict[str, ColumnCheck]:
    """Each column's checks; a key's columns are never null, and a single key is unique
    (a composite key's uniqueness is one check over its columns together)."""
    specs = dict(config.checks.columns)
    for name in config.keys:
        update = {"not_null": True, "unique": True} if len(config.keys) == 1 else {"not_null": True}
        specs[name] = specs.get(name, ColumnCheck()).model_copy(update=update)
    return specs


def _unique_key(keys: tuple[str, ...], columns: dict[str, ColumnCheck]) -> RowCheck:
    """``a+b.unique``: rows repeating a composite key beyond its first copy, with up to 20
    repeated keys (shown as ``[a, b]``); the examples are the rows holding those keys."""
    name, value = "+".join(keys), key_sql(keys)
    severities = [columns.get(k, ColumnCheck()).severity for k in keys]
    severity: Severity = "error" if "error" in severities else severities[0]
    repeated = (
        f"SELECT {value} AS v, count(*) AS n FROM {TABLE} WHERE {key_present(keys)} "
        f"GROUP BY v HAVING count(*) > 1"
    )
    count = f"SELECT coalesce(sum(n) - count(*), 0), list(v::VARCHAR)[1:20] FROM ({repeated})"
    order = ", ".join(quote(k) for k in keys)
    examples = (
        f"SELECT * FROM {TABLE} WHERE {value}::VARCHAR IN (SELECT unnest($keys)) ORDER BY {order}"
    )
    return RowCheck(f"{name}.unique", "unique", severity, f"{name} has duplicate keys", name,
                    count_sql=count, examples_sql=examples)  # fmt: skip


def _extra_columns(config: SourceConfig, schema: dict[str, str]) -> list[Finding]:
    declared = set(config.checks.columns) | set(config.keys)
    policy = config.checks.extra_columns
    if not config.checks.columns or policy == "ignore":
        return []
    extra = [name for name in schema if name not in declared]
    if not extra:
        return []
    message = f"columns not declared in checks: {', '.join(extra)}"
    severity: Severity = "error" if policy == "error" else "warn"
    finding = Finding("schema:extra_columns", "extra_columns", severity, "fail", message)
    return [replace(finding, violations=len(extra))]


def _missing(
    name: str, severity: Severity, key: str | None = None, keys: tuple[str, ...] = ()
) -> Finding:
    message = f"column '{name}' is missing from the batch"
    if name in keys:
        of = f" of the key {key}" if len(keys) > 1 else ""
        message = f"key column '{name}'{of} is missing from the batch; add it or change key:"
    return Finding(
        f"{name}.missing", "missing_column", severity, "fail", message, column=name, violations=1
    )


def _broken(name: str, kind: str, severity: Severity, message: str) -> Finding:
    return Finding(name, kind, severity, "fail", message)


def _typed(name: str, spec: ColumnCheck, kind: str) -> str:
    """The column as an SQL expression of its declared type (text read as numbers)."""
    wanted = spec.type
    if kind == "string" and wanted in _CASTS:
        return f"try_cast({quote(name)} AS {_CASTS[wanted]})"
    return quote(name)


def _type_check(
    name: str, spec: ColumnCheck, duck_type: str, kind: str
) -> tuple[list[Finding], list[RowCheck]]:
    wanted = spec.type
    if wanted is None or kind in _ACCEPTS[wanted] or duck_type.strip('"') == "NULL":
        return [], []  # a NULL column (Arrow's null: no value in any row) holds no other type
    col = quote(name)
    if kind == "string" and wanted in _CASTS:
        predicate = f"{col} IS NOT NULL AND try_cast({col} AS {_CASTS[wanted]}) IS NULL"
        describe = f"values of {name} are not {wanted}"
        return [], [RowCheck(f"{name}.type", "type", spec.severity, describe, name, predicate)]
    message = f"column '{name}' is {duck_type}, expected {wanted}"
    return [
        Finding(f"{name}.type", "type", spec.severity, "fail", message, column=name, violations=1)
    ], []


def _column_checks(
    name: str, spec: ColumnCheck, typed: str, kind: str, now: datetime, by_id: bool
) -> list[RowCheck]:
    col, severity = quote(name), spec.severity

    def check(kind: str, describe: str, predicate: str, *args: object) -> RowCheck:
        settles = kind if kind in ("not_null", "allowed", "range", "not_future") else None
        if settles == "not_null":
            settles = "nulls"
        return RowCheck(f"{name}.{kind}", kind, severity, describe, name, predicate,
                        settles_on=settles, settle_args=args)  # fmt: skip

    checks: list[RowCheck] = []
    if spec.not_null:
        checks.append(check("not_null", f"{name} is null", f"{col} IS NULL"))
    if spec.range is not None:
        low, high = spec.range
        parts = [f"{typed} < {sql_literal(low)}"] if low is not None else []
        parts += [f"{typed} > {sql_literal(high)}"] if high is not None else []
        predicate = "(" + (" OR ".join(parts) or "FALSE") + ")"
        checks.append(check("range", f"{name} outside [{low}, {high}]", predicate, low, high))
    if spec.allowed is not None:
        allowed = tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in spec.allowed)
        listed = ", ".join(sql_literal(v) for v in allowed)
        predicate = f"{col}::VARCHAR NOT IN ({listed})"
        checks.append(check("allowed", f"{name} is not an allowed value", predicate, *allowed))
    if spec.regex is not None:
        glob = _glob(spec.regex)
        predicate = f"NOT regexp_full_match({col}::VARCHAR, {sql_literal(spec.regex)})"
        if glob is not None:  # the same strings, matched without a regex engine per row
            predicate = f"NOT ({col}::VARCHAR GLOB {sql_literal(glob)})"
        checks.append(check("regex", f"{name} does not match {spec.regex!r}", predicate))
    if spec.unique:
        checks.append(_unique(name, severity, kind, by_id))
    if spec.not_future:
        stamp = now.isoformat()
        predicate = f"{typed} > {sql_literal(stamp)}::TIMESTAMP"
        checks.append(check("not_future", f"{name} is in the future", predicate, stamp))
    return checks


def _glob(regex: str) -> str | None:
    """A GLOB pattern matching exactly the strings ``regex`` matches in full, or None.

    Only for a regex of fixed width made of ASCII characters and ASCII classes (such as
    ``id_[0-9]{8}`` or ``[A-Z]{2}-\\d{4}``): each atom then stands for one character in
    both languages, and DuckDB's GLOB costs less per row than a regex match."""
    parts: list[str] = []
    at = 0
    while at < len(regex):
        atom = _ATOM.match(regex, at)
        assert atom is not None  # one character always matches
        text, at = atom.group(), atom.end()
        if text == "\\d":
            text = "[0-9]"
        elif text.startswith("\\") and text[1:] in _ESCAPED:
            text = text[1:]
        elif text.startswith("["):
            if not _class(text[1:-1]):
                return None
        elif text not in _LITERAL:
            return None
        repeat = _REPEAT.match(regex, at)
        times = 1
        if repeat is not None:
            low, high = repeat.groups()
            if high is not None and high != low:
                return None
            times, at = int(low), repeat.end()
        parts.append(text * times)
    glob = "".join(parts)
    return glob if len(glob) <= 1_000 else None


def _class(body: str) -> bool:
    """Whether a regex class body is plain ASCII members and ranges (``a-z``, ``0-9``),
    which a GLOB class reads the same way."""
    at = 0
    while at < len(body):
        if at + 2 < len(body) and body[at + 1] == "-":
            low, high = body[at], body[at + 2]
            if not any(low in r and high in r and low <= high for r in _RANGES):
                return False
            at += 3
        elif body[at] in _MEMBERS:
            at += 1
        else:
            return False
    return bool(body)


def _unique(name: str, severity: Severity, kind: str, by_id: bool) -> RowCheck:
    """Duplicates beyond the first copy, counted together with up to 20 repeated values
    (one GROUP BY); the examples are then the rows holding those values.

    A column that arrives sorted (ids, times) is counted without the GROUP BY: in arrival
    order its repeats are neighbours, so one streaming pass counts the rows equal to the
    row before them, and the 20 smallest repeated values are the first 20 runs (read, if
    there are any, by a second pass that stops at the 20th). The pass also counts the
    rows smaller than the row before; if there is any, the column is not sorted and the
    GROUP BY counts instead. ``by_id``: the leading rows can be read by row id (no
    column shadows it), so the probe reads one row group instead of a LIMIT."""
    col = quote(name)
    sorted_sql = probe_sql = repeats_sql = None
    if kind in _SORTABLE:
        streamed = f"SELECT {col} AS v, lag({col}) OVER () AS p FROM {{}} WHERE {col} IS NOT NULL"
        sorted_sql = f"SELECT count_if(v < p), count_if(v = p) FROM ({streamed.format(TABLE)})"
        runs = (
            f"SELECT {col} AS v, lag({col}) OVER () AS p, lag({col}, 2) OVER () AS pp "
            f"FROM {TABLE} WHERE {col} IS NOT NULL"
        )
        first = "v = p AND (pp IS NULL OR pp <> v)"  # the first repeat of each run
        repeats_sql = f"SELECT v::VARCHAR FROM ({runs}) WHERE {first} LIMIT 20"
        bound = f"WHERE rowid < {_PROBE_ROWS}" if by_id else f"LIMIT {_PROBE_ROWS}"
        head = f"(SELECT {col} FROM {TABLE} {bound})"
        probe_sql = f"SELECT count_if(v < p) FROM ({streamed.format(head)})"
    repeated = (
        f"SELECT {col} AS v, count(*) AS n FROM {TABLE} WHERE {col} IS NOT NULL "
        f"GROUP BY {col} HAVING count(*) > 1"
    )
    count = f"SELECT coalesce(sum(n) - count(*), 0), list(v::VARCHAR)[1:20] FROM ({repeated})"
    examples = (
        f"SELECT * FROM {TABLE} WHERE {col}::VARCHAR IN (SELECT unnest($keys)) ORDER BY {col}"
    )
    return RowCheck(f"{name}.unique", "unique", severity, f"{name} has duplicate values", name,
                    count_sql=count, examples_sql=examples, sorted_sql=sorted_sql,
                    probe_sql=probe_sql, repeats_sql=repeats_sql,
                    lagged=name if sorted_sql else None)  # fmt: skip


def _ordered(
    by: str, within: str | None, severity: Severity, schema: dict[str, str]
) -> tuple[list[Finding], list[RowCheck]]:
    name = f"ordered:{by}" + (f" within {within}" if within else "")
    absent = [c for c in (by, within) if c is not None and c not in schema]
    if absent:
        message = f"cannot check ordering: column '{absent[0]}' is missing"
        return [_broken(name, "ordered", severity, message)], []
    partition = f"PARTITION BY {quote(within)} " if within else ""
    previous = f"lag({quote(by)}) OVER ({partition}ORDER BY rowid)"
    lagged = f"SELECT *, {previous} AS {quote('previous_' + by)} FROM {TABLE}"
    predicate = f"{quote(by)} < {quote('previous_' + by)}"
    count = f"SELECT count(*) FILTER (WHERE {predicate}) FROM ({lagged})"
    if within is None:  # an empty OVER () streams the table in arrival order: no sort
        streamed = f"SELECT {quote(by)} AS v, lag({quote(by)}) OVER () AS p FROM {TABLE}"
        count = f"SELECT count(*) FILTER (WHERE v < p) FROM ({streamed})"
    describe = f"{by} goes backwards" + (f" within a {within}" if within else "")
    check = RowCheck(
        name,
        "ordered",
        severity,
        describe,
        by,
        count_sql=count,
        examples_sql=f"SELECT * FROM ({lagged}) WHERE {predicate}",
        lagged=by if within is None else None,
    )
    return [], [check]
