"""The Grafana dashboard under deploy/: valid JSON whose every query names a metric that
Keel really exports, from the server's /metrics or the worker's --metrics-port."""

from __future__ import annotations

import json
import re
from pathlib import Path

from keel.monitoring.gauges import WorkerGauges
from keel.serving.metrics import Metrics

BOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "keel.json"
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def _exported() -> set[str]:
    names: set[str] = set()
    for registry in (Metrics().registry, WorkerGauges().registry):
        for family in registry.collect():
            names.add(family.name)
            names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ()))
    return names


def test_every_query_names_an_exported_metric() -> None:
    """Each panel's expression uses only metric names Keel's processes export."""
    board = json.loads(BOARD.read_text())
    exprs = [target["expr"] for panel in board["panels"] for target in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\bkeel_[a-z_]+\b", expr)}
    assert used and used <= _exported(), sorted(used - _exported())


def test_the_dashboard_covers_drift_performance_alerts_rollouts_and_delivery() -> None:
    """One panel at least for each family the worker exports."""
    text = BOARD.read_text()
    for name in ("keel_drift_statistic", "keel_performance", "keel_alerts_open",
                 "keel_rollout_share_percent", "keel_delivery_change_failure_rate"):  # fmt: skip
        assert name in text, name
