"""Statistics against a reference version, computed from the two profiles alone.

Row count, null-rate and cardinality changes compare profile fields. Distribution shift
uses the quantile sketches: each sketch is read as a piecewise-linear CDF, PSI is taken
over the reference's quantile bins and KS is the largest gap between the two CDFs. Both
thresholds grow for small samples: a shift is reported only when it exceeds both the
configured effect size and the value that sampling noise alone would reach at ``alpha``
(the two-sample KS critical value; for PSI, the chi-square approximation
PSI * nm / (n + m) ~ chi2(bins - 1)). Comparing profiles means comparing with any past
version costs nothing but reading its profile.
"""

from __future__ import annotations

import math

import numpy as np

from keel.data.model import QUANTILES, ColumnProfile, Finding, Profile, Status
from keel.schema import StatisticsCheck

__all__ = ["MIN_ROWS", "compare", "ks_distance", "psi"]

MIN_ROWS = 30
"""Below this many rows on either side, distributions are not compared."""
_EPS = 1e-4


def compare(current: Profile, reference: Profile, spec: StatisticsCheck) -> list[Finding]:
    """Findings for every statistic ``spec`` bounds, current batch vs reference."""
    findings = _schema_changes(current, reference, spec)
    findings += _row_change(current, reference, spec)
    for column in current.columns:
        before = reference.column(column.name)
        if before is not None and before.kind == column.kind:
            findings += _column_changes(column, before, spec)
    return findings


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two vectors of bin shares."""
    e = np.clip(expected, _EPS, None)
    a = np.clip(actual, _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def ks_distance(current: ColumnProfile, reference: ColumnProfile) -> float:
    """Largest gap between the two sketch CDFs."""
    grid = np.union1d(current.quantiles, reference.quantiles)
    return float(np.max(np.abs(_cdf(current, grid) - _cdf(reference, grid))))


def _cdf(column: ColumnProfile, points: np.ndarray) -> np.ndarray:
    values = np.maximum.accumulate(np.asarray(column.quantiles, dtype=float))
    probabilities = np.asarray(QUANTILES, dtype=float)
    cdf: np.ndarray = np.interp(points, values, probabilities, left=0.0, right=1.0)
    return cdf


def _finding(
    spec: StatisticsCheck,
    name: str,
    kind: str,
    failed: bool,
    message: str,
    column: str | None = None,
) -> Finding:
    status: Status = "fail" if failed else "pass"
    return Finding(
        name, kind, spec.severity, status, message, column=column, violations=int(failed)
    )


def _schema_changes(current: Profile, reference: Profile, spec: StatisticsCheck) -> list[Finding]:
    before, after = reference.schema, current.schema
    changes = [f"-{c}" for c in before if c not in after]
    changes += [f"+{c}" for c in after if c not in before]
    changes += [
        f"{c}: {before[c]} -> {after[c]}" for c in after if c in before and before[c] != after[c]
    ]
    message = "schema changed: " + ", ".join(changes) if changes else "schema unchanged"
    return [_finding(spec, "stats:schema", "schema_change", bool(changes), message)]


def _row_change(current: Profile, reference: Profile, spec: StatisticsCheck) -> list[Finding]:
    if spec.max_row_change is None or reference.rows == 0:
        return []
    change = abs(current.rows - reference.rows) / reference.rows
    message = f"row count {reference.rows} -> {current.rows} ({change:+.0%} change)"
    return [_finding(spec, "stats:rows", "row_count_change", change > spec.max_row_change, message)]


def _column_changes(
    now: ColumnProfile, before: ColumnProfile, spec: StatisticsCheck
) -> list[Finding]:
    found: list[Finding] = []
    name = now.name
    if spec.max_null_rate_change is not None:
        change = abs(now.null_rate - before.null_rate)
        message = f"{name} null rate {before.null_rate:.2%} -> {now.null_rate:.2%}"
        found.append(
            _finding(
                spec,
                f"stats:{name}.null_rate",
                "null_rate_change",
                change > spec.max_null_rate_change,
                message,
                name,
            )
        )
    if spec.max_cardinality_change is not None and before.distinct > 0 and now.distinct >= 0:
        change = abs(now.distinct - before.distinct) / before.distinct
        message = f"{name} distinct values {before.distinct} -> {now.distinct}"
        found.append(
            _finding(
                spec,
                f"stats:{name}.cardinality",
                "cardinality_change",
                change > spec.max_cardinality_change,
                message,
                name,
            )
        )
    n, m = now.count - now.nulls, before.count - before.nulls
    if min(n, m) < MIN_ROWS:
        return [
            *found,
            Finding(
                f"stats:{name}.distribution",
                "distribution",
                spec.severity,
                "skip",
                f"{name}: not enough rows to compare distributions ({min(n, m)})",
                name,
            ),
        ]
    if now.quantiles and before.quantiles:
        found += _numeric_shift(now, before, spec, n, m)
    elif now.top_complete and before.top_complete:
        found += _category_shift(now, before, spec, n, m)
    return found


def _numeric_shift(
    now: ColumnProfile, before: ColumnProfile, spec: StatisticsCheck, n: int, m: int
) -> list[Finding]:
    found: list[Finding] = []
    edges = np.unique(np.asarray(before.quantiles, dtype=float))
    if spec.max_psi is not None and len(edges) > 1:
        expected = np.diff(_cdf(before, edges))
        actual = np.diff(_cdf(now, edges))
        actual = np.append(actual, 1.0 - actual.sum())
        expected = np.append(expected, 1.0 - expected.sum())
        found.append(_psi_finding(now.name, psi(expected, actual), len(edges), spec, n, m))
    if spec.max_ks is not None:
        distance = ks_distance(now, before)
        critical = math.sqrt(-math.log(spec.alpha / 2) / 2) * math.sqrt((n + m) / (n * m))
        limit = max(spec.max_ks, critical)
        message = f"{now.name} KS distance {distance:.3f} (limit {limit:.3f} for {n} vs {m} rows)"
        found.append(
            _finding(
                spec, f"stats:{now.name}.ks", "distribution", distance > limit, message, now.name
            )
        )
    return found


def _category_shift(
    now: ColumnProfile, before: ColumnProfile, spec: StatisticsCheck, n: int, m: int
) -> list[Finding]:
    if spec.max_psi is None:
        return []
    categories = sorted({v for v, _ in now.top} | {v for v, _ in before.top})
    share_now, share_before = dict(now.top), dict(before.top)
    actual = np.array([share_now.get(c, 0) / n for c in categories])
    expected = np.array([share_before.get(c, 0) / m for c in categories])
    return [_psi_finding(now.name, psi(expected, actual), len(categories), spec, n, m)]


def _psi_finding(
    name: str, value: float, bins: int, spec: StatisticsCheck, n: int, m: int
) -> Finding:
    from scipy.stats import chi2

    noise = float(chi2.ppf(1 - spec.alpha, max(bins - 1, 1))) * (1 / n + 1 / m)
    limit = max(spec.max_psi or 0.0, noise)
    message = f"{name} PSI {value:.3f} (limit {limit:.3f} for {n} vs {m} rows)"
    return _finding(spec, f"stats:{name}.psi", "distribution", value > limit, message, name)
