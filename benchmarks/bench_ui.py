"""Dashboard benchmark: server time of every page on a large project.

Run from the repository root:

    PYTHONPATH=src python benchmarks/bench_ui.py [--quick]

Builds a project with 1,000 model versions and 1,000,000 logged predictions over 30
days (``--quick``: 100 versions, 100,000 predictions), then times each page through the
ASGI app in-process (no network), signed in: the first request (which reads the log)
and the median of the next 5 (traffic, drift and performance figures are reused for
``MEMO_SECONDS``). Target (issue 9): every page <= 300 ms server time.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ui.demo import write_project

from keel.monitoring.log import PredictionLog
from keel.project import Project
from keel.serving.keys import KeyStore
from keel.training.registry import Registry
from keel.ui import create_ui_app

PAGES = [
    "/ui/", "/ui/registry", "/ui/registry/50", "/ui/registry/diff?a=1&b=2",
    "/ui/deployments", "/ui/drift", "/ui/performance", "/ui/alerts", "/ui/data", "/ui/runbook",
]  # fmt: skip
DAY = 86_400.0


def register(project: Project, versions: int) -> None:
    registry = Registry(project.store)
    for number in range(1, versions + 1):
        row = {
            "name": "churn", "source": "train", "artifact": f"{number:064x}",
            "size_bytes": 2048, "config_hash": f"{number:064x}", "data_ref": f"d@{number}",
            "data_rows": 1000, "data_start": None, "data_end": None,
            "metrics": {"roc_auc": 0.8}, "duration_s": 1.0,
        }  # fmt: skip
        registry.register(row, {"metrics": row["metrics"]}, "bench")
        registry.record_gate(number, {"passed": True, "checks": []}, True, "bench")
        if number % 100 == 0:
            registry.transition(number, "production", "bench", "bench")


def log(project: Project, rows: int, now: float) -> list[str]:
    rng = np.random.default_rng(0)
    prediction_log = PredictionLog.for_project(project, sync=False)
    ids: list[str] = []
    batch = 50_000
    for start in range(0, rows, batch):
        count = min(batch, rows - start)
        times = now - 30 * DAY + (np.arange(start, start + count) / rows) * 30 * DAY
        xs = rng.normal(0, 1, count)
        entries = [
            {"inputs": {"x": float(x), "plan": "basic"}, "output": int(i % 2),
             "confidence": 0.8, "latency_ms": 3.0, "fallback": None, "time": float(t)}
            for i, (x, t) in enumerate(zip(xs, times, strict=True))
        ]  # fmt: skip
        ids += prediction_log.append(entries)
        prediction_log.flush()
    prediction_log.close(flush=False)
    return ids


def feedback(project: Project, ids: list[str], now: float) -> None:
    from keel.serving.tables import feedback as table

    rows = [{"prediction_id": p, "label": "1", "value": None, "received_at": now} for p in ids]
    with project.store.begin() as connection:
        connection.execute(table.insert(), rows)


async def time_pages(project: Project, key: str) -> list[tuple[str, float, float]]:
    app = create_ui_app(project)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        await client.post("/ui/login", data={"api_key": key, "next": "/ui/"})
        results = []
        for path in PAGES:
            times = []
            for _ in range(6):
                started = time.perf_counter()
                response = await client.get(path)
                times.append(time.perf_counter() - started)
                assert response.status_code == 200, (path, response.status_code)
            results.append((path, times[0] * 1000, statistics.median(times[1:]) * 1000))
        return results


def main() -> None:
    quick = "--quick" in sys.argv
    versions, rows = (100, 100_000) if quick else (1_000, 1_000_000)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "project"
        root.mkdir()
        write_project(root)
        now = time.time()
        with Project.open(root) as project:
            started = time.perf_counter()
            register(project, versions)
            ids = log(project, rows, now)
            feedback(project, ids[::10], now)
            key, _ = KeyStore(project.store).create("bench", ["admin"], "bench")
            took = time.perf_counter() - started
            print(f"built {versions} versions and {rows} predictions in {took:.0f} s")
            results = asyncio.run(time_pages(project, key))
    print(f"\n| page ({versions} versions, {rows:,} predictions) | first ms | median ms | target |")
    print("|---|---:|---:|---:|")
    for path, first, median in results:
        print(f"| {path} | {first:.0f} | {median:.0f} | 300 |")


if __name__ == "__main__":
    main()
