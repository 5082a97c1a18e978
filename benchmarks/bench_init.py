"""From a team's raw table to a deployed model: `keel init --from`, ingest, train, deploy.

A real-shaped table (default 100,000 rows) is written as CSV: a customer key, a signup
timestamp, long-tailed money with nulls, counts, 0/1 flags, a category with a long tail
(300 values), a low-cardinality plan, and a Yes/No target with a 7% minority. Each round
runs the four commands a new user runs, as separate processes, in a fresh folder, and
times each; the table prints the median and the worst round per step and in all.

Target: the whole path <= 30 s wall on 100k rows.

Run from the repository root with the project's virtualenv active:

    python benchmarks/bench_init.py [--rows 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

STEPS = ("init --from", "ingest", "train", "deploy latest")


def table(rows: int, seed: int = 0) -> pd.DataFrame:
    """Customers as a team exports them: nulls, flags, a long tail, text labels."""
    rng = np.random.default_rng(seed)
    spend = rng.lognormal(4, 1.1, rows).round(2)
    spend[rng.random(rows) < 0.04] = np.nan
    tail = rng.zipf(1.6, rows) % 300
    signup = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 365 * 86_400, rows), "s")
    tenure = rng.integers(1, 72, rows)
    logit = -2.6 + 0.9 * (spend > 120) - tenure / 60 + 0.6 * rng.standard_normal(rows)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:07d}" for i in range(rows)],
            "signed_up": signup.strftime("%Y-%m-%d %H:%M:%S"),
            "plan": rng.choice(["basic", "standard", "premium"], rows, p=[0.6, 0.3, 0.1]),
            "city": [f"city_{v:03d}" for v in tail],
            "tenure": tenure,
            "tickets": rng.poisson(0.8, rows),
            "spend": spend,
            "paperless": rng.integers(0, 2, rows),
            "senior": (rng.random(rows) < 0.16).astype(int),
            "churned": np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "Yes", "No"),
        }
    )


def run(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "keel", *args], cwd=cwd, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"keel {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - started


def one_round(csv: Path) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "customers"
        init = ["init", str(project), "--from", str(csv), "--target", "churned"]
        init += ["--key", "customer_id", "--time", "signed_up"]
        times = [run(init, Path(tmp))]
        for args in (["ingest"], ["train"], ["deploy", "latest", "--reason", "bench"]):
            times.append(run(args, project))
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "customers.csv"
        frame = table(options.rows)
        frame.to_csv(csv, index=False)
        share = (frame["churned"] == "Yes").mean()
        print(f"{options.rows:,} rows, {frame.shape[1]} columns, 'Yes' share {share:.3f}")
        rounds = [one_round(csv) for _ in range(options.rounds)]
    print(f"{'step':<16}{'median s':>10}{'worst s':>10}")
    for index, step in enumerate(STEPS):
        values = [r[index] for r in rounds]
        print(f"{step:<16}{statistics.median(values):>10.2f}{max(values):>10.2f}")
    totals = [sum(r) for r in rounds]
    whole = f"{statistics.median(totals):>10.2f}{max(totals):>10.2f}"
    print(f"{'whole path':<16}{whole}  (target <= 30 s)")


if __name__ == "__main__":
    main()
