"""The server's per-call cost of shaping rows for a model fitted on a pandas frame.

Run from the repository root with the project's virtualenv active:

    python benchmarks/bench_frame.py [--calls 300] [--rounds 5]

A HistGradientBoostingClassifier (200 trees, native categoricals) is fitted on a frame
shaped like the example churn project's features: nine numbers and two text columns. Each
call turns a batch of request rows into the model's frame and scores it, two ways taken
in turn within each round: a pandas frame built from the records and then converted
(``prepare``, training's path), and ``rows_preparer``, which builds each column directly.
The table shows medians over rounds of each round's median call; one OpenMP thread, as in
the server's model thread.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from keel.training.inputs import infer_schema, prepare, rows_preparer

NUMBERS = [
    "age",
    "income",
    "charges",
    "logins",
    "tickets",
    "tickets_7d",
    "spend",
    "refunds",
    "ratio",
]


def fitted(rows: int = 2000) -> tuple[Any, list[dict[str, Any]], pd.DataFrame]:
    random = np.random.default_rng(0)
    frame = pd.DataFrame({name: random.normal(0, 1, rows) for name in NUMBERS})
    frame["plan"] = random.choice(["basic", "standard", "premium"], rows)
    frame["region"] = random.choice(["north", "south", "east", "west"], rows)
    schema = infer_schema(frame)
    target = (frame["age"] + (frame["plan"] == "basic") + random.normal(0, 1, rows)) > 0.5
    model = HistGradientBoostingClassifier(max_iter=200, early_stopping=False, random_state=0)
    return model.fit(prepare(frame, schema), target), schema, frame


def median_call(call: Callable[[], Any], calls: int) -> float:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="Calls per path per round.")
    parser.add_argument("--rounds", type=int, default=5, help="Rounds (medians are shown).")
    args = parser.parse_args()
    threadpool_limits(1)
    model, schema, frame = fitted()
    names = [column["name"] for column in schema]
    fast = rows_preparer(schema)
    print(f"{'rows':>5} {'path':<14} {'frame ms':>9} {'frame+score ms':>15}")
    for size in (1, 16):
        batch = frame.head(size).to_dict("records")

        def built(rows: list[dict[str, Any]] = batch) -> pd.DataFrame:
            return prepare(pd.DataFrame.from_records(rows, columns=names), schema)

        def direct(rows: list[dict[str, Any]] = batch) -> pd.DataFrame:
            return fast(rows)

        paths: dict[str, Callable[[], pd.DataFrame]] = {"prepare": built, "rows_preparer": direct}
        shaping: dict[str, list[float]] = {name: [] for name in paths}
        scoring: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(args.rounds):
            for name, shape in paths.items():
                shaping[name].append(median_call(shape, args.calls))
                scoring[name].append(
                    median_call(lambda shape=shape: model.predict_proba(shape()), args.calls)
                )
        for name in paths:
            frame_ms, total_ms = statistics.median(shaping[name]), statistics.median(scoring[name])
            print(f"{size:>5} {name:<14} {frame_ms:>9.2f} {total_ms:>15.2f}")


if __name__ == "__main__":
    main()
