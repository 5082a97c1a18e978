"""Benchmark: Keel's local validation beside Pandera and polars on bench_data's batch.

The same 1,000,000-row x 20-column batch (``bench_data.build_sql``), clean and dirty, and
the same checks (``bench_data.checks``), each run timed in a fresh child process: CPU
seconds of all threads (process time) and wall seconds, median of ``--repeat`` runs.

- ``keel``: profile + validate, as ``bench_data.one_run``;
- ``keel validate``: validate alone, given a profile computed before the clock;
- ``pandera``: a pandas ``DataFrameSchema`` with the equivalent checks, ``lazy=True`` so
  every failure is collected (the failure cases are counted after the clock);
- ``polars``: the checks as expressions in one ``select`` (violations per check, with
  ``n_unique`` for the id's uniqueness and a shift for the ordering);
- ``polars + profile``: that ``select`` plus a basic profile (nulls, min / max, mean / std,
  Keel's quantiles, ``n_unique`` of every column, value counts of the category columns),
  to set beside Keel's profile + checks.

Loading the batch (DuckDB, then to pandas or polars) and imports are outside the clock.
Each peer's violation counts per check are compared with Keel's on the same batch
(``counts equal``): rows failing a row check; for ``max_null_rate`` the column's nulls
when the rate is exceeded, else 0 (as Keel reports it).

    pip install 'keel-ml[peers]'
    PYTHONPATH=src python benchmarks/bench_data_peers.py [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bench_data import CATEGORIES, COUNTS, NUMERIC, build_sql, checks

SRC = Path(__file__).resolve().parents[1] / "src"
NOW = datetime(2030, 1, 1)
ALLOWED = ["alpha", "beta", "gamma", "delta"]
REGEX = "id_[0-9]{8}"
MAX_NULL_RATE = 0.01
TIMES = ("t0", "t1")
PEERS = ("keel", "keel validate", "pandera", "polars", "polars + profile")


def _config() -> Any:
    from keel.schema import SourceConfig

    return SourceConfig.model_validate({"kind": "csv", "path": "x", "checks": checks()})


def _keel_counts(report: Any) -> dict[str, int]:
    return {f.check: f.violations for f in report.findings}


def run_keel(rows: int, dirty: bool, profiled: bool) -> tuple[float, float, dict[str, int]]:
    """Profile + validate (``profiled`` False) or validate alone on a given profile."""
    from keel.data.batch import Batch
    from keel.data.profiling import profile
    from keel.data.validation import validate

    config = _config()
    batch = Batch.from_sql(build_sql(rows, dirty))
    batch.rows  # noqa: B018 - materialised before timing
    summary = profile(batch) if profiled else None
    cpu, wall = time.process_time(), time.perf_counter()
    if summary is None:
        summary = profile(batch)
    report = validate(batch, "bench", config, summary, _context())
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu, wall, _keel_counts(report)


def _context() -> Any:
    from keel.data.validation import Context

    return Context(now=NOW)


def _load(rows: int, dirty: bool, to: str) -> Any:
    import duckdb

    with duckdb.connect() as con:
        relation = con.sql(build_sql(rows, dirty))
        return relation.df() if to == "pandas" else relation.pl()


def pandera_schema() -> Any:
    """bench_data's checks as a Pandera (pandas) schema; every check is named as Keel
    names it, so the failure cases count per Keel check."""
    import pandas as pd
    import pandera.pandas as pa

    def over_rate(s: pd.Series) -> pd.Series:
        # Keel's max_null_rate as rows: the null rows fail when the rate is exceeded
        return s.notna() | (s.isna().mean() <= MAX_NULL_RATE)

    columns: dict[str, Any] = {
        "id": pa.Column(
            "str",
            pa.Check.str_matches(f"^{REGEX}$", name="regex"),
            nullable=False,
            unique=True,
            report_duplicates="exclude_first",
        )
    }
    for name in NUMERIC:
        columns[name] = pa.Column(
            "float64",
            [
                pa.Check.in_range(0, 100, name="range"),
                pa.Check(over_rate, ignore_na=False, name="max_null_rate"),
            ],
            nullable=False,
        )
    for name in COUNTS:
        columns[name] = pa.Column("int64", pa.Check.in_range(0, 999, name="range"), nullable=False)
    for name in CATEGORIES:
        columns[name] = pa.Column("str", pa.Check.isin(ALLOWED, name="allowed"), nullable=False)
    for name in TIMES:
        columns[name] = pa.Column(
            "datetime64[us]", pa.Check.le(pd.Timestamp(NOW), name="not_future"), nullable=False
        )

    # a rule fails only where it is false (a null operand passes, as in SQL)
    def t_order(df: pd.DataFrame) -> pd.Series:
        return ~(df["t1"] < df["t0"])

    def x_sum(df: pd.DataFrame) -> pd.Series:
        return ~(df["x0"] + df["x1"] < 0)

    def n_small(df: pd.DataFrame) -> pd.Series:
        return (df["n0"] < 1000) | (df["c0"] == "alpha")

    def ordered(df: pd.DataFrame) -> pd.Series:
        return ~(df["t0"] < df["t0"].shift())

    return pa.DataFrameSchema(
        columns,
        checks=[
            pa.Check(t_order, name="rule:t_order"),
            pa.Check(x_sum, name="rule:x_sum"),
            pa.Check(n_small, name="rule:n_small"),
            pa.Check(ordered, name="ordered:t0"),
        ],
    )


_PANDERA_NAMES = {
    "not_nullable": "not_null",
    "field_uniqueness": "unique",
    "str_matches": "regex",
    "in_range": "range",
    "isin": "allowed",
    "less_than_or_equal_to": "not_future",
}


def run_pandera(rows: int, dirty: bool) -> tuple[float, float, dict[str, int]]:
    import pandera.errors

    frame = _load(rows, dirty, "pandas")
    schema = pandera_schema()
    failures = None
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as error:
        failures = error.failure_cases
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu, wall, _pandera_counts(failures)


def _pandera_counts(failures: Any) -> dict[str, int]:
    """Violations per Keel check name from Pandera's failure cases: per column and check,
    and for a check of the whole frame (which lists a failing row once per column) the
    rows it names."""
    if failures is None:
        return {}
    counts: dict[str, int] = {}
    whole = failures["schema_context"] == "DataFrameSchema"
    for check, n in failures[whole].groupby("check")["index"].nunique().items():
        counts[str(check)] = int(n)
    for (column, check), n in failures[~whole].groupby(["column", "check"]).size().items():
        kind = str(check).split("(")[0]  # built-in checks carry their own names
        counts[f"{column}.{_PANDERA_NAMES.get(kind, kind)}"] = int(n)
    return counts


def polars_checks() -> dict[str, Any]:
    """bench_data's checks as polars expressions, each counting its violations."""
    import polars as pl

    def nulls(name: str) -> Any:
        return pl.col(name).null_count()

    found: dict[str, Any] = {}
    found["id.not_null"] = nulls("id")
    found["id.regex"] = (~pl.col("id").str.contains(f"^{REGEX}$")).sum()
    found["id.unique"] = pl.col("id").count() - pl.col("id").drop_nulls().n_unique()
    for name in NUMERIC:
        col = pl.col(name)
        found[f"{name}.not_null"] = nulls(name)
        found[f"{name}.range"] = ((col < 0) | (col > 100)).sum()
        over = nulls(name) > MAX_NULL_RATE * pl.len()
        found[f"{name}.max_null_rate"] = pl.when(over).then(nulls(name)).otherwise(0)
    for name in COUNTS:
        col = pl.col(name)
        found[f"{name}.not_null"] = nulls(name)
        found[f"{name}.range"] = ((col < 0) | (col > 999)).sum()
    for name in CATEGORIES:
        found[f"{name}.not_null"] = nulls(name)
        found[f"{name}.allowed"] = (~pl.col(name).is_in(ALLOWED)).sum()
    for name in TIMES:
        found[f"{name}.not_null"] = nulls(name)
        found[f"{name}.not_future"] = (pl.col(name) > NOW).sum()
    found["rule:t_order"] = (pl.col("t1") < pl.col("t0")).sum()
    found["rule:x_sum"] = (pl.col("x0") + pl.col("x1") < 0).sum()
    found["rule:n_small"] = (~((pl.col("n0") < 1000) | (pl.col("c0") == "alpha"))).sum()
    found["ordered:t0"] = (pl.col("t0") < pl.col("t0").shift()).sum()
    return {name: expr.cast(pl.Int64).alias(name) for name, expr in found.items()}


def polars_profile(frame: Any) -> list[Any]:
    """A basic profile as polars expressions: nulls, min / max, mean / std, Keel's inner
    quantiles of numeric columns (exact, over every row), n_unique of every column."""
    import polars as pl

    from keel.data.model import QUANTILES

    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        exprs += [col.null_count().alias(f"{name}:nulls"), col.n_unique().alias(f"{name}:n")]
        if dtype.is_numeric() or dtype.is_temporal():
            exprs += [col.min().alias(f"{name}:min"), col.max().alias(f"{name}:max")]
        if dtype.is_numeric():
            exprs += [col.mean().alias(f"{name}:mean"), col.std().alias(f"{name}:std")]
            # all quantiles in one expression: one sort per column, not one per quantile
            exprs.append(col.quantile(list(QUANTILES[1:-1])).alias(f"{name}:quantiles"))
    return exprs


def run_polars(rows: int, dirty: bool, profiled: bool) -> tuple[float, float, dict[str, int]]:
    frame = _load(rows, dirty, "polars")
    named = polars_checks()
    extra = polars_profile(frame) if profiled else []
    cpu, wall = time.process_time(), time.perf_counter()
    result = frame.select(*named.values(), *extra)
    if profiled:
        for name in CATEGORIES:
            frame.get_column(name).value_counts(sort=True)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    row = result.select(list(named)).row(0, named=True)
    return cpu, wall, {name: int(value) for name, value in row.items()}


RUNS: dict[str, Callable[[int, bool], tuple[float, float, dict[str, int]]]] = {
    "keel": lambda rows, dirty: run_keel(rows, dirty, profiled=False),
    "keel validate": lambda rows, dirty: run_keel(rows, dirty, profiled=True),
    "pandera": run_pandera,
    "polars": lambda rows, dirty: run_polars(rows, dirty, profiled=False),
    "polars + profile": lambda rows, dirty: run_polars(rows, dirty, profiled=True),
}


def spawn(peer: str, rows: int, dirty: bool) -> dict[str, Any]:
    args = [sys.executable, __file__, "--child", peer, "--rows", str(rows)]
    out = subprocess.run(
        args + (["--dirty"] if dirty else []),
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    if out.returncode != 0:
        batch = "dirty" if dirty else "clean"
        raise SystemExit(f"{peer} failed on the {batch} batch:\n{out.stderr}")
    return dict(json.loads(out.stdout))


def differences(mine: dict[str, int], keel: dict[str, int]) -> list[str]:
    """Checks whose counts differ; a check one side does not report counts as 0."""
    return [
        f"{name}: {mine.get(name, 0)} vs keel {keel.get(name, 0)}"
        for name in sorted(set(mine) | set(keel))
        if mine.get(name, 0) != keel.get(name, 0)
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", choices=PEERS)
    parser.add_argument("--dirty", action="store_true")
    args = parser.parse_args()
    if any(importlib.util.find_spec(name) is None for name in ("pandera", "polars")):
        raise SystemExit("This benchmark needs pandera and polars: pip install 'keel-ml[peers]'.")
    if args.child:
        cpu, wall, counts = RUNS[args.child](args.rows, args.dirty)
        print(json.dumps({"cpu": cpu, "wall": wall, "counts": counts}))
        return
    load = [os.getloadavg()]
    print(f"validate {args.rows:,} rows x 20 columns, median of {args.repeat} runs")
    print(f"{'batch':<7}{'run':<18}{'cpu':>8}{'wall':>8}{'failed':>8}  counts equal")
    for dirty in (False, True):
        runs: dict[str, list[dict[str, Any]]] = {peer: [] for peer in PEERS}
        for _ in range(args.repeat):  # peers interleaved, so load swings touch them alike
            for peer in PEERS:
                runs[peer].append(spawn(peer, args.rows, dirty))
                load.append(os.getloadavg())
        keel = runs["keel"][0]["counts"]
        for peer in PEERS:
            cpu = statistics.median(r["cpu"] for r in runs[peer])
            wall = statistics.median(r["wall"] for r in runs[peer])
            counts = runs[peer][0]["counts"]
            failed = sum(1 for n in counts.values() if n)
            wrong = sorted({d for r in runs[peer] for d in differences(r["counts"], keel)})
            equal = "yes" if not wrong else "NO: " + "; ".join(wrong)
            batch = "dirty" if dirty else "clean"
            print(f"{batch:<7}{peer:<18}{cpu:>8.3f}{wall:>8.3f}{failed:>8}  {equal}")
    print("(cpu = CPU seconds of all threads; failed = checks with violations)")
    low, high = min(a[0] for a in load), max(a[0] for a in load)
    print(f"load average (1 min) during the runs: {low:.2f} - {high:.2f}")


if __name__ == "__main__":
    main()
