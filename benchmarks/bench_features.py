"""Feature store speed: online lookups (SQLite, Redis), the point-in-time join, and
``keel train`` through the feature store against training from a file.

Run from the repository root with the project's virtualenv active:

    python benchmarks/bench_features.py [--labels 1000000] [--rows 10000000] [--skip-redis]
        [--flights 336776] [--train-labels 160000] [--runs 3] [--only lookup|join|train]

Targets: one entity x 10 features p50 <= 50 us and p99 <= 0.5 ms on SQLite; 100 entities in
one call <= 2 ms; Redis p99 <= 1 ms for one entity on loopback; point-in-time join of
1,000,000 labels against 10,000,000 feature rows <= 10 s and <= 2 GB; ``keel train`` with
``training.data: features`` within 1.5x of ``keel train`` from a file with the same columns
(flights-shaped: hourly weather by airport, trailing delays by carrier and by airport and
carrier; see ``_flights.py``).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from keel.features import FeatureSet, FeatureStore, FeatureView
from keel.features.online import OnlineStore, RedisOnlineStore, SQLiteOnlineStore
from keel.features.sql import point_in_time_sql

NAMES = tuple(f"f{i}" for i in range(10))
VIEW = FeatureView(
    name="bench", source="s", entity="entity", timestamp="ts", features=NAMES, ttl="30d"
)
AT = datetime(2026, 1, 2)


def _fill(online: OnlineStore, entities: int) -> None:
    rows = ((f"e{i}", AT, {n: i * 0.5 for n in NAMES}) for i in range(entities))
    online.write("bench", rows)


def _lookups(store: FeatureStore, batch: int, repeats: int) -> list[float]:
    times = []
    for i in range(repeats):
        rows = [{"entity": f"e{(i * 7 + j) % 10_000}"} for j in range(batch)]
        started = time.perf_counter()
        store.lookup(rows, AT)
        times.append(time.perf_counter() - started)
    return times


def _quantile(times: list[float], q: float) -> float:
    return statistics.quantiles(times, n=1000)[int(q * 1000) - 1]


def online_table(online: OnlineStore, name: str) -> list[tuple[str, float, float]]:
    _fill(online, 10_000)
    store = FeatureStore(None, FeatureSet({"bench": VIEW}), online)  # type: ignore[arg-type]
    _lookups(store, 1, 1000)  # warm up
    one = _lookups(store, 1, 20_000)
    hundred = _lookups(store, 100, 2_000)
    return [
        (f"{name}: 1 entity x 10 features", _quantile(one, 0.5), _quantile(one, 0.99)),
        (f"{name}: 100 entities x 10 features", _quantile(hundred, 0.5), _quantile(hundred, 0.99)),
    ]


def point_in_time(labels: int, rows: int) -> tuple[float, float]:
    import duckdb

    con = duckdb.connect()
    entities = max(1, rows // 1000)
    features = ", ".join(f"random() AS {n}" for n in NAMES)
    con.execute(
        f"CREATE TABLE feats AS SELECT 'e' || (i % {entities}) AS entity_id, "
        f"TIMESTAMP '2025-01-01' + INTERVAL (i // {entities}) HOUR AS feature_ts, {features} "
        f"FROM range({rows}) t(i)"
    )
    con.execute(
        f"CREATE TABLE labels AS SELECT 'e' || (i % {entities}) AS entity, "
        f"TIMESTAMP '2025-01-01' + INTERVAL (random() * 1000) HOUR AS ts, i AS _keel_row "
        f"FROM range({labels}) t(i)"
    )
    sql = point_in_time_sql("labels", "ts", [(VIEW, "feats")])
    started = time.perf_counter()
    count = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()
    elapsed = time.perf_counter() - started
    assert count is not None and count[0] == labels
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return elapsed, peak


def lookups(args: argparse.Namespace) -> None:
    results: list[tuple[str, Any, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        results += online_table(SQLiteOnlineStore(Path(folder) / "online.db"), "sqlite")
    if not args.skip_redis:
        redis = RedisOnlineStore(args.redis, namespace=f"bench-{uuid.uuid4().hex}")
        try:
            results += online_table(redis, "redis")
        finally:
            redis.clear("bench")
    print(f"{'lookup':<36} {'p50 us':>9} {'p99 us':>9}")
    for name, p50, p99 in results:
        print(f"{name:<36} {p50 * 1e6:>9.1f} {p99 * 1e6:>9.1f}")


def join(args: argparse.Namespace) -> None:
    elapsed, peak = point_in_time(args.labels, args.rows)
    print(f"\npoint-in-time join: {args.labels:,} labels x {args.rows:,} feature rows")
    print(f"{'seconds':<36} {elapsed:>9.2f}")
    print(f"{'peak RSS of the process, MB':<36} {peak:>9.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--skip-redis", action="store_true")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--flights", type=int, default=336_776)
    parser.add_argument("--train-labels", type=int, default=160_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=["lookup", "join", "train"])
    args = parser.parse_args()
    if args.only in (None, "lookup"):
        lookups(args)
    if args.only in (None, "join"):
        join(args)
    if args.only in (None, "train"):
        from _flights import training_table

        training_table(args.flights, args.train_labels, args.runs)


if __name__ == "__main__":
    main()
