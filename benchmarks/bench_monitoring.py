"""Monitoring benchmarks: drift over 1,000,000 x 25 (raw and from sketches), log append.

Run from the repository root:

    PYTHONPATH=src python benchmarks/bench_monitoring.py [--quick] [--seeds 50]

Prints one table of medians. Targets: drift over 1M rows x 25 columns from raw data
<= 2 s CPU; from sketches <= 50 ms whatever the row count. Also prints the seeded
detection and false-alarm rates of the default settings, for the note: how many seeded
windows find all five planted shifts and nothing else, and how many find the hardest of
them (c0, a category share 0.40 -> 0.30), whose power at 500 rows is about 85%; and, on
the column types real tables have (a 0/1 flag, a mostly-zero amount, a 200-category
column), how often a planted shift is found at 500 rows (from the sketch) and how often
an unshifted 200-category column says "no drift" at 2,000 rows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' 25-column population

from tests.monitoring.synthetic import SHIFTED, population
from tests.monitoring.test_drift_types import table

from keel.monitoring.drift import compare, compare_frame
from keel.monitoring.log import PredictionLog
from keel.monitoring.reference import Reference
from keel.monitoring.window import sketcher_for


def _median(run: Callable[[], object], repeat: int, clock: Callable[[], float]) -> float:
    times = []
    for _ in range(repeat):
        start = clock()
        run()
        times.append(clock() - start)
    return statistics.median(times)


def bench_drift(rows: int, quick: bool) -> list[tuple[str, str, str]]:
    reference = Reference.from_frame(population(20_000, seed=1))
    window = population(rows, seed=2, tiny_shift=0.02)
    raw = _median(lambda: compare_frame(reference, window), 1 if quick else 3, time.process_time)
    sketch = reference.layout.sketch(window)
    flagged = len(compare(reference, sketch).drifted)
    from_sketch = _median(lambda: compare(reference, sketch), 20, time.perf_counter)
    build = _median(lambda: reference.layout.sketch(window), 1 if quick else 3, time.process_time)
    return [
        (f"drift, {rows:,} rows x 25 cols, from raw (CPU)", f"{raw:.2f} s", "<= 2 s"),
        (
            f"drift, {rows:,} rows x 25 cols, from a sketch",
            f"{from_sketch * 1000:.1f} ms",
            "<= 50 ms",
        ),
        (f"sketch {rows:,} rows x 25 cols (CPU)", f"{build:.2f} s", ""),
        (f"columns flagged, {rows:,} rows shifted +0.02 sd", str(flagged), "0"),
    ]


def bench_log(count: int) -> list[tuple[str, str, str]]:
    """Append throughput (25 features + output per record) and the cost of rolling."""
    rows = population(count, seed=3).to_dict("records")
    entries = [
        {"inputs": {k: (None if v != v else v) for k, v in r.items()}, "output": {"p": 0.5}}
        for r in rows
    ]
    reference = Reference.from_frame(population(20_000, seed=1))
    out = []
    with tempfile.TemporaryDirectory() as folder:
        for label, sync, batch, sketched in (
            ("fsync each", True, 1, False),
            ("fsync per 100 (group commit)", True, 100, False),
            ("fsync per 100, sketched segments", True, 100, True),
        ):
            sketcher = sketcher_for(reference) if sketched else None
            log = PredictionLog(Path(folder) / str(len(out)), sync=sync, sketcher=sketcher)
            start = time.perf_counter()
            for i in range(0, count, batch):
                log.append(entries[i : i + batch])
            rate = count / (time.perf_counter() - start)
            flush = _median(log.flush, 1, time.perf_counter)
            log.close()
            out.append((f"log append, {label}", f"{rate:,.0f} rec/s", ""))
            per_record = flush / count * 1e6
            out.append(
                (
                    f"  roll to Parquet{' + sketch' if sketched else ''}, per record",
                    f"{per_record:.0f} us",
                    "background",
                )
            )
    return out


def rates(seeds: int) -> list[tuple[str, str, str]]:
    reference = Reference.from_frame(population(20_000, seed=1))
    out = []
    for rows in (500, 1_000, 5_000):
        found = [compare_frame(reference, population(rows, s, shift=True)) for s in range(seeds)]
        exact = sum(sorted(r.drifted) == sorted(SHIFTED) for r in found)
        share = sum(r.column("c0").decision == "drift" for r in found)
        out.append(
            (f"all 5 planted shifts, no false column, {rows} rows", f"{exact}/{seeds}", "seeded")
        )
        out.append((f"  c0 alone (share 0.40 -> 0.30) found, {rows} rows", f"{share}/{seeds}", ""))
    small = Reference.from_frame(population(5_000, seed=2))
    for rows in (50, 500, 5_000):
        alarms = sum(
            bool(compare_frame(small, population(rows, 1000 + s)).drifted) for s in range(100)
        )
        out.append((f"false alarms, unshifted, {rows} rows", f"{alarms}/100", "<= 5/100"))
    return out


def type_rates(seeds: int) -> list[tuple[str, str, str]]:
    """Flags, zero-inflated amounts and long-tailed categories (test_drift_types.py)."""
    reference = Reference.from_frame(table(20_000, seed=10_000))
    out = []
    for column, shift, label in (
        ("holiday", {"flag": 0.5}, "flag share 0.16 -> 0.5"),
        ("precipitation", {"zeros": 0.55}, "zeros 75% -> 55%"),
    ):
        found = sum(
            column in compare(reference, reference.layout.sketch(table(500, s, **shift))).drifted
            for s in range(seeds)
        )
        out.append((f"{label} found, 500 rows, from the sketch", f"{found}/{seeds}", ">= 95%"))
    quiet = sum(
        compare_frame(reference, table(2_000, s)).column("destination").decision == "no_drift"
        for s in range(seeds)
    )
    out.append(
        ('200 categories unshifted say "no drift", 2,000 rows', f"{quiet}/{seeds}", ">= 95%")
    )
    for rows in (100, 500, 2_000):
        alarms = sum(bool(compare_frame(reference, table(rows, s)).drifted) for s in range(seeds))
        out.append((f"false alarms, 4 column types, {rows} rows", f"{alarms}/{seeds}", "<= 5%"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one timing run, 20 seeds")
    parser.add_argument("--seeds", type=int, help="seeded windows per size (default 50)")
    args = parser.parse_args()
    seeds = args.seeds or (20 if args.quick else 50)
    table = (
        bench_drift(1_000_000, args.quick)
        + bench_log(2_000 if args.quick else 10_000)
        + rates(seeds)
        + type_rates(seeds)
    )
    width = max(len(row[0]) for row in table)
    print(f"{'measure':<{width}}  {'median':>14}  target")
    for name, value, target in table:
        print(f"{name:<{width}}  {value:>14}  {target}")


if __name__ == "__main__":
    main()
