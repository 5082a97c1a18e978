"""Benchmark: validate a 1,000,000-row x 20-column batch against about 60 checks.

Prints one table: median CPU seconds (all threads, via process time) and wall seconds of
profile + validate, for a clean batch and a dirty one (about 2% bad values in several
columns), the memory the validation adds above the loaded data (peak RSS growth, measured
in a fresh child process per run), and the time of ``import keel.data``.

``--breakdown`` prints instead where the CPU time goes: each query of profile + validate
by what it does, and each check counted in the shared pass timed alone (those extra
queries are not part of the totals).

    PYTHONPATH=src python benchmarks/bench_data.py [--rows 1000000] [--repeat 5] [--breakdown]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"

NUMERIC = [f"x{i}" for i in range(8)]
COUNTS = [f"n{i}" for i in range(5)]
CATEGORIES = [f"c{i}" for i in range(4)]


def build_sql(rows: int, dirty: bool) -> str:
    """A SELECT producing the batch; ``dirty`` plants nulls, out-of-range values and dupes."""
    bad = "(hash(range) % 50 = 0)" if dirty else "FALSE"
    cols = [
        "'id_' || lpad((CASE WHEN "
        + bad
        + " THEN range - 1 ELSE range END)::VARCHAR, 8, '0') AS id"
    ]
    for i, name in enumerate(NUMERIC):
        value = f"(hash(range * {i + 3}) % 100000) / 1000.0"
        cols.append(f"CASE WHEN {bad} AND {i} % 2 = 0 THEN NULL ELSE {value} END AS {name}")
    for i, name in enumerate(COUNTS):
        cols.append(
            f"CASE WHEN {bad} THEN -5 ELSE (hash(range + {i}) % 1000)::BIGINT END AS {name}"
        )
    for i, name in enumerate(CATEGORIES):
        cols.append(
            f"CASE WHEN {bad} THEN 'zzz' ELSE (['alpha','beta','gamma','delta'])"
            f"[(hash(range * {i + 7}) % 4)::INT + 1] END AS {name}"
        )
    cols.append("TIMESTAMP '2025-01-01' + to_seconds(range) AS t0")
    cols.append("TIMESTAMP '2025-01-01' + to_seconds(range + 60) AS t1")
    return f"SELECT {', '.join(cols)} FROM range({rows})"


def checks() -> dict[str, Any]:
    columns: dict[str, Any] = {
        "id": {"type": "string", "not_null": True, "unique": True, "regex": "id_[0-9]{8}"}
    }
    for name in NUMERIC:
        columns[name] = {
            "type": "float",
            "not_null": True,
            "range": [0, 100],
            "max_null_rate": 0.01,
        }
    for name in COUNTS:
        columns[name] = {"type": "int", "not_null": True, "range": [0, 999]}
    for name in CATEGORIES:
        columns[name] = {
            "type": "category",
            "not_null": True,
            "allowed": ["alpha", "beta", "gamma", "delta"],
        }
    for name in ("t0", "t1"):
        columns[name] = {"type": "timestamp", "not_null": True, "not_future": True}
    rules = [
        {"name": "t_order", "expr": "t1 >= t0"},
        {"name": "x_sum", "expr": "x0 + x1 >= 0"},
        {"name": "n_small", "expr": "n0 < 1000 or c0 == 'alpha'"},
    ]
    return {"columns": columns, "rules": rules, "ordered": {"by": "t0"}}


def count_checks(spec: dict[str, Any]) -> int:
    per_column = sum(
        len([k for k in column if k not in ("severity",)]) for column in spec["columns"].values()
    )
    return per_column + len(spec["rules"]) + 1


def one_run(rows: int, dirty: bool) -> dict[str, float]:
    """Child process: load, then time profile + validate and measure memory growth."""
    from datetime import datetime

    from keel.data.batch import Batch
    from keel.data.profiling import profile
    from keel.data.validation import Context, validate
    from keel.schema import SourceConfig

    config = SourceConfig.model_validate({"kind": "csv", "path": "x", "checks": checks()})
    batch = Batch.from_sql(build_sql(rows, dirty))
    batch.rows  # noqa: B018 - materialised before timing
    before = _rss_mib()
    cpu, wall = time.process_time(), time.perf_counter()
    summary = profile(batch)
    profiled = time.process_time() - cpu
    report = validate(batch, "bench", config, summary, Context(now=datetime(2030, 1, 1)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "cpu": cpu,
        "profile": profiled,
        "checks": cpu - profiled,
        "wall": wall,
        "mem": max(0.0, peak - before),
        "failed": len(report.failures),
    }


_STEPS = (
    ("examples", ("rowid IN", "$keys", "keel_example", "AS k, rowid AS r")),
    ("shared pass (regex, range, rules, ...)", ("min(r, ", "count_if(f0)")),
    ("unique: sorted probe + stream", ("lag(",)),
    ("unique: group by", ("HAVING count(*) > 1",)),
    ("profile: quantile sample", ("USING SAMPLE", "quantile_cont(v, CAST")),
    ("profile: distinct triage (head)", ("LIMIT 20000) ", "rowid < 20000")),
    ("profile: category counts", ("histogram(", "GROUP BY ALL", "count(*) FROM batch GROUP BY")),
    ("profile: counts, min/max, sums", ("SELECT count(",)),
    ("profile: distinct estimates", ("approx_count_distinct(",)),
)


def _step(sql: str) -> str:
    if "OVER () AS p FROM batch)" in sql or "ORDER BY rowid) AS" in sql:
        return "ordered"
    if re.search(r"LIMIT \d+$", sql):
        return "examples"
    return next((name for name, marks in _STEPS if any(m in sql for m in marks)), "other sql")


class _Timed:
    """A DuckDB connection that adds the CPU time of each query (and of fetching its
    result) to the step the query belongs to."""

    def __init__(self, con: Any, spent: dict[str, float]) -> None:
        self.con, self.spent, self.step = con, spent, "other sql"

    def _timed(self, call: Any, *args: Any) -> Any:
        start = time.process_time()
        try:
            return call(*args)
        finally:
            self.spent[self.step] = self.spent.get(self.step, 0.0) + time.process_time() - start

    def execute(self, sql: str, *args: Any) -> _Timed:
        self.step = _step(sql)
        self._timed(self.con.execute, sql, *args)
        return self

    def fetchone(self) -> Any:
        return self._timed(self.con.fetchone)

    def fetchall(self) -> Any:
        return self._timed(self.con.fetchall)

    def fetchnumpy(self) -> Any:
        return self._timed(self.con.fetchnumpy)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)


def breakdown_run(rows: int, dirty: bool) -> dict[str, float]:
    """Child process: CPU seconds per step of profile + validate, then each shared check
    alone (``alone: <check>``)."""
    from datetime import datetime

    from keel.data.batch import Batch
    from keel.data.checks import compile_suite, settle
    from keel.data.profiling import profile
    from keel.data.validation import Context, validate
    from keel.schema import SourceConfig

    config = SourceConfig.model_validate({"kind": "csv", "path": "x", "checks": checks()})
    batch = Batch.from_sql(build_sql(rows, dirty))
    batch.rows  # noqa: B018
    raw, spent = batch.con, {}
    batch.con = _Timed(raw, spent)  # type: ignore[assignment]
    start = time.process_time()
    summary = profile(batch)
    profiled = time.process_time() - start
    validate(batch, "bench", config, summary, Context(now=datetime(2030, 1, 1)))
    total = time.process_time() - start
    spent["python and small queries"] = total - sum(spent.values())
    spent["total (profile)"], spent["total"] = profiled, total
    batch.con = raw
    kinds = {c.name: c.kind for c in summary.columns}
    suite = compile_suite(config, summary.schema, kinds, datetime(2030, 1, 1))
    for check in suite.row_checks:
        if check.predicate is not None and settle(check, summary) is None:
            start = time.process_time()
            raw.execute(f"SELECT count(*) FILTER (WHERE {check.predicate}) FROM batch").fetchone()
            spent[f"alone: {check.name}"] = time.process_time() - start
    return spent


def show_breakdown(rows: int, repeat: int) -> None:
    runs = {dirty: [spawn(rows, dirty, "--breakdown") for _ in range(repeat)] for dirty in (0, 1)}
    names = list(dict.fromkeys(k for dirty in (0, 1) for r in runs[dirty] for k in r))
    print(f"CPU seconds per step, {rows:,} rows, median of {repeat} runs")
    print(f"{'step':<42}{'clean':>9}{'dirty':>9}")
    for name in sorted(names, key=lambda n: (n.startswith("total"), n.startswith("alone"))):
        cells = "".join(
            f"{statistics.median(r.get(name, 0.0) for r in runs[dirty]):>9.3f}" for dirty in (0, 1)
        )
        print(f"{name:<42}{cells}")


def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def import_time() -> float:
    code = "import time; t = time.perf_counter(); import keel.data; print(time.perf_counter() - t)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC)},
        check=True,
    )
    return float(out.stdout)


def spawn(rows: int, dirty: bool, *extra: str) -> dict[str, float]:
    args = [sys.executable, __file__, "--child", "--rows", str(rows), *extra] + (
        ["--dirty"] if dirty else []
    )
    out = subprocess.run(
        args, capture_output=True, text=True, env={"PYTHONPATH": str(SRC)}, check=True
    )
    return dict(json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--dirty", action="store_true")
    parser.add_argument("--breakdown", action="store_true")
    args = parser.parse_args()
    if args.child:
        run = breakdown_run if args.breakdown else one_run
        print(json.dumps(run(args.rows, args.dirty)))
        return
    if args.breakdown:
        show_breakdown(args.rows, args.repeat)
        return
    print(
        f"validate {args.rows:,} rows x 20 columns, {count_checks(checks())} checks, "
        f"median of {args.repeat} runs"
    )
    keys = ("cpu", "profile", "checks", "wall", "mem")
    print(f"{'batch':<8}" + "".join(f"{k:>9}" for k in (*keys, "failed")))
    medians = {}
    for dirty in (False, True):
        runs = [spawn(args.rows, dirty) for _ in range(args.repeat)]
        med = {k: statistics.median(r[k] for r in runs) for k in keys}
        medians[dirty] = med
        cells = "".join(f"{med[k]:>9.3f}" for k in keys[:-1]) + f"{med['mem']:>9.1f}"
        print(f"{'dirty' if dirty else 'clean':<8}{cells}{int(runs[0]['failed']):>9}")
    print(f"dirty / clean CPU: {medians[True]['cpu'] / medians[False]['cpu']:.2f}")
    print("(cpu = profile + checks, CPU seconds of all threads; mem = MiB above the loaded data)")
    imports = statistics.median(import_time() for _ in range(args.repeat))
    print(f"import keel.data: {imports:.3f} s")


if __name__ == "__main__":
    main()
