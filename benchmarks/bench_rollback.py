"""Seconds from `keel rollback` until every running `keel serve` replica answers with the
previous model.

Run from the repository root with the project's virtualenv active:

    PYTHONPATH=. python benchmarks/bench_rollback.py [--runs 5]           # one replica, SQLite
    PYTHONPATH=. python benchmarks/bench_rollback.py --replicas 3 \\
        --store postgresql://postgres@127.0.0.1:5432/test                # three share PostgreSQL

With a PostgreSQL store the replicas share a fresh schema, dropped afterwards. Each run
is a real `keel rollback --reason ...` (the rollback of the previous one, so the two
versions take turns), after a random pause of up to a second so that the runs land at
different points of the replicas' polling. A replica's time runs from the rollback's
event in the registry to its first `/v1/predict` answer from the version rolled back to,
asked every 20 ms.

Target: <= 2 s on every replica (each polls the registry every `serving.reload_interval`,
1 s).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from tests.delivery.helpers import replicas, wait_for_answer
from tests.helpers import keel, postgres_schema
from tests.serving.helpers import create_key, register_model

from keel.delivery.deployments import deployments
from keel.project import Project

TARGET_S = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--store", default=None, help="postgresql://... (default: SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, _schema(args.store) as store:
        root = Path(folder)
        _write_config(root, store)
        with Project.open(root) as project:
            first = register_model(project, root, seed=0).label
            second = register_model(project, root, seed=1).label
            key = create_key(project)
        with replicas(root, args.replicas) as clients:
            for http in clients:
                if wait_for_answer(http, key, second, 120) is None:
                    sys.exit(f"a replica never answered with {second}")
            pauses = random.Random(0)
            runs = []
            for run in range(args.runs):
                time.sleep(pauses.uniform(0, 1))
                runs.append(_rollback(root, clients, key, first if run % 2 == 0 else second))
    _report(runs, args.store or "sqlite")


def _write_config(root: Path, store: str | None) -> None:
    line = f"store: '{store}'\n" if store else ""
    (root / "keel.yaml").write_text(f"name: churn\n{line}serving:\n  rate_limit: 100000/second\n")


@contextlib.contextmanager
def _schema(url: str | None) -> Iterator[str | None]:
    """A fresh PostgreSQL schema for the run (None for the project's SQLite store)."""
    if url is None:
        yield None
        return
    with postgres_schema(url) as store:
        yield store


def _rollback(root: Path, clients: Sequence[httpx.Client], key: str, target: str) -> list[float]:
    """Run `keel rollback`; seconds until each replica answered with ``target``."""
    with ThreadPoolExecutor(len(clients)) as pool:
        answered = [pool.submit(wait_for_answer, http, key, target, 30) for http in clients]
        done = keel("rollback", "--reason", "benchmark", "-p", str(root))
        if done.returncode != 0:
            sys.exit(done.stderr)
        with Project.open(root) as project:
            at = deployments(project, 1)[0].at
        seen = [future.result() for future in answered]
    if None in seen:
        sys.exit(f"a replica did not answer with {target} within 30 s")
    return [when - at for when in seen if when is not None]


def _report(runs: list[list[float]], store: str) -> None:
    """Median and max per replica, and of the slowest replica per run."""
    backend = store.split(":", 1)[0]
    print(f"{len(runs)} rollbacks, {len(runs[0])} replica(s) on {backend}")
    print(f"{'replica':>8} {'median s':>9} {'max s':>7} {'target s':>9}")
    columns = [[run[i] for run in runs] for i in range(len(runs[0]))]
    rows = [(str(i + 1), column) for i, column in enumerate(columns)]
    rows.append(("every", [max(run) for run in runs]))
    for name, times in rows:
        print(f"{name:>8} {statistics.median(times):>9.2f} {max(times):>7.2f} {TARGET_S:>9.2f}")


if __name__ == "__main__":
    main()
