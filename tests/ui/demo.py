"""A small project with something on every dashboard page, built through each layer's API.

Model versions are registered with made-up run records (no training: it is slow and the
dashboard only reads the registry); data goes through real ingestion; predictions through
the real prediction log; alerts through the real alert book.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from keel.project import Project

CONFIG = """\
name: ui-demo
sources:
  customers:
    kind: csv
    path: data/customers*.csv
    key: customer_id
    checks:
      columns:
        customer_id: {type: string, not_null: true, unique: true}
        age: {type: int, range: [18, 110]}
monitoring:
  reference: data/reference.csv
  window: 1h
alerts:
  rules:
    - {name: auc_drop, when: "max_effect > 0.5", severity: critical}
    - {name: many_drifted, when: "drifted_features >= 2", severity: warning}
  contacts:
    - {name: Dana Ops, role: primary on-call, reach: "+1 555 0100"}
"""


@dataclass(frozen=True)
class Demo:
    """The project folder and the keys made for it."""

    root: Path
    admin_key: str
    viewer_key: str
    alert_id: str
    built_at: float


def write_project(root: Path) -> None:
    """keel.yaml, a customers file to ingest and a reference for drift."""
    (root / "keel.yaml").write_text(CONFIG)
    data = root / "data"
    data.mkdir(exist_ok=True)
    rows = ["customer_id,age"] + [f"c{i:03d},{20 + i % 60}" for i in range(40)]
    (data / "customers.csv").write_text("\n".join(rows) + "\n")
    rng = np.random.default_rng(0)
    lines = ["x,plan"] + [
        f"{v:.4f},{p}"
        for v, p in zip(rng.normal(0, 1, 400), ["basic", "premium"] * 200, strict=True)
    ]
    (data / "reference.csv").write_text("\n".join(lines) + "\n")


def register_versions(project: Project) -> None:
    """Three versions: 1 then 2 in production (1 archived), 3 a candidate that failed its gate."""
    from keel.training.registry import Registry

    registry = Registry(project.store)
    for number, auc in ((1, 0.81), (2, 0.84), (3, 0.79)):
        row = {
            "name": "churn", "source": "train", "artifact": f"{number:064x}",
            "size_bytes": 2048 * number, "config_hash": f"{number:064x}",
            "data_ref": f"customers@{number:012x}", "data_rows": 1000 * number,
            "data_start": "2026-01-01", "data_end": "2026-06-30",
            "metrics": {"roc_auc": auc, "log_loss": 0.4 - auc / 10}, "duration_s": 1.5,
        }  # fmt: skip
        record = {
            "metrics": row["metrics"],
            "training": {"model": {"params": {"max_iter": 100 * number}}},
            "data": {"ref": row["data_ref"], "rows": row["data_rows"]},
            "code": {"features.py": f"{number:08x}"},
        }
        registry.register(row, record, "tester")
        passed = number != 3
        checks = [
            {
                "name": "roc_auc",
                "passed": passed,
                "value": auc,
                "threshold": ">= 0.80",
                "detail": "",
            }
        ]
        registry.record_gate(number, {"passed": passed, "checks": checks}, passed, "tester")
    registry.transition(1, "production", "tester", "first deploy")
    registry.transition(2, "production", "tester", "better auc")
    roll_back_a_canary(project, 3)


def roll_back_a_canary(project: Project, version: int) -> None:
    """``version`` forced into canary at 5%, then rolled back by the worker, on record."""
    import sqlalchemy as sa

    from keel.delivery.staging import record
    from keel.delivery.tables import rollouts
    from keel.training.registry import Registry

    registry = Registry(project.store)
    registry.transition(version, "canary", "tester", "see how it does", forced=True)
    record(project, version, "canary", 5.0)
    why = "canary rolled back: error rate 4/30 (at least 2.9%) exceeds 1.0%"
    registry.transition(version, "archived", "keel-worker", why)
    with project.store.begin() as connection:
        update = sa.update(rollouts).where(rollouts.c.version == version)
        connection.execute(update.values(state="rolled_back"))


def log_predictions(project: Project, now: float) -> list[str]:
    """Two hundred predictions over the last three hours, the latest shifted (drift)."""
    from keel.monitoring.log import PredictionLog

    rng = np.random.default_rng(1)
    entries = []
    for i in range(200):
        shift = 1.5 if i >= 150 else 0.0
        entries.append({
            "inputs": {"x": float(rng.normal(shift, 1)), "plan": "basic" if i % 3 else "premium"},
            "output": int(i % 2), "model_version": "churn@2", "route": "production",
            "confidence": 0.7 + (i % 5) / 20, "latency_ms": 2.0 + i % 7,
            "fallback": "rule" if i % 50 == 0 else None, "time": now - 3 * 3600 + i * 54,
        })  # fmt: skip
    log = PredictionLog.for_project(project)
    try:
        ids = log.append(entries)
        log.flush()
    finally:
        log.close(flush=False)
    return ids


def store_feedback(project: Project, ids: list[str], now: float) -> None:
    from keel.serving.tables import feedback

    rows = [
        {
            "prediction_id": pid,
            "label": str(i % 2 if i % 4 else 1 - i % 2),
            "value": None,
            "received_at": now,
        }
        for i, pid in enumerate(ids[::2])
    ]
    with project.store.begin() as connection:
        connection.execute(sa.insert(feedback), rows)


def open_alerts(project: Project, now: float) -> str:
    """One critical alert open, one warning resolved; returns the open one's id."""
    from keel.monitoring.alerts import AlertBook, Rule

    book = AlertBook(project.store)
    book.observe(Rule("auc_drop", "max_effect > 0.5", "critical"), {"max_effect": 0.9}, now)
    warning = Rule("many_drifted", "drifted_features >= 2", "warning", clear_after=1)
    book.observe(warning, {"drifted_features": 3}, now - 600)
    book.observe(warning, {"drifted_features": 0}, now - 300)
    return book.list("open")[0].id


def build_demo(root: Path) -> Demo:
    """The whole demo project under ``root``."""
    from keel.data.ingestion import ingest
    from keel.serving.keys import KeyStore

    write_project(root)
    now = time.time()
    with Project.open(root) as project:
        ingest(project)
        register_versions(project)
        ids = log_predictions(project, now)
        store_feedback(project, ids, now)
        alert_id = open_alerts(project, now)
        keys = KeyStore(project.store)
        admin, _ = keys.create("ops-admin", ["admin"], "tester")
        viewer, _ = keys.create("analyst", ["viewer"], "tester")
    return Demo(root, admin, viewer, alert_id, now)
