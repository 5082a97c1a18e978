"""How often inferred checks trip on an honest next batch, and what inference costs.

For each seed, a customer-like table (heavy-tailed money, counts, ages, categories with a
rare one, nulls) is split 70/30 at random; checks are inferred from the 70% and the 30% is
validated with Keel's own validation. The share of held-out batches with any failing
check and with a blocking one is printed for Keel's inference and for the rule it
replaced (ranges at the exact observed min and max, blocking). Last, the time to infer
from tables of growing size (median of 3 runs).

Run from the repository root with the project's virtualenv active:

    python benchmarks/bench_infer.py [--seeds 50]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
import pandas as pd

from keel.data.batch import Batch
from keel.data.infer import infer
from keel.data.profiling import profile
from keel.data.validation import Context, validate
from keel.schema import SourceConfig

NOW = pd.Timestamp("2026-12-01").to_pydatetime()


def table(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 0.8, rows).round(2)
    income[rng.random(rows) < 0.05] = np.nan
    plans = rng.choice(["basic", "standard", "premium", "legacy"], rows, p=[0.5, 0.3, 0.19, 0.01])
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:07d}" for i in range(rows)],
            "plan": plans,
            "age": rng.integers(18, 90, rows),
            "income": income,
            "tickets": rng.poisson(1.2, rows),
            "charges": rng.normal(70, 20, rows).round(2),
        }
    )


def exact(checks: dict[str, Any]) -> dict[str, Any]:
    """The replaced rule: ranges at the observed min and max, and every check blocking."""
    columns = {}
    for name, spec in checks["columns"].items():
        columns[name] = {k: v for k, v in spec.items() if k != "severity"}
    return {"columns": columns}


def trips(seen: pd.DataFrame, held: pd.DataFrame, old: bool) -> tuple[bool, bool]:
    with Batch.from_frame(seen) as batch:
        checks = infer(batch, key="customer_id", now=NOW).checks
    if old:
        checks = exact(checks)
        for name in ("age", "income", "tickets", "charges"):
            checks["columns"][name]["range"] = [seen[name].min(), seen[name].max()]
    config = SourceConfig.model_validate(
        {"kind": "csv", "path": "x", "key": "customer_id", "checks": checks}
    )
    with Batch.from_frame(held) as batch:
        report = validate(batch, "t", config, profile(batch), Context(now=NOW))
    return bool(report.failures), not report.passed


def honesty(seeds: int, rows: int) -> None:
    print(f"| inference | held-out batches ({rows * 3 // 10} rows) with any failure | blocked |")
    print("|---|---|---|")
    for label, old in (("keel (margins, warn)", False), ("exact min/max, error", True)):
        outcomes = []
        for seed in range(seeds):
            frame = table(rows, seed)
            seen = frame.sample(frac=0.7, random_state=seed)
            outcomes.append(trips(seen, frame.drop(seen.index), old))
        failing = sum(a for a, _ in outcomes) / seeds
        blocked = sum(b for _, b in outcomes) / seeds
        print(f"| {label} | {failing:.0%} of {seeds} | {blocked:.0%} |")


def speed() -> None:
    print("\n| rows | infer (s, median of 3) |")
    print("|---|---|")
    for rows in (10_000, 100_000, 1_000_000):
        frame = table(rows, 0)
        times = []
        for _ in range(3):
            with Batch.from_frame(frame) as batch:
                started = time.perf_counter()
                infer(batch, key="customer_id", now=NOW)
                times.append(time.perf_counter() - started)
        print(f"| {rows:,} | {statistics.median(times):.3f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--rows", type=int, default=5000)
    options = parser.parse_args()
    honesty(options.seeds, options.rows)
    speed()
