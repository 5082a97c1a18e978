"""Prometheus metrics of the server, correct with several worker processes.

Each app owns its registry (two apps in one test process do not collide). When
``PROMETHEUS_MULTIPROC_DIR`` is set (``keel serve --workers N`` sets it), every worker
writes its values to files there and ``/metrics`` sums them across workers.
With ``serving.metrics`` set, the supervisor also serves that sum on a port of its own,
without a key (``metrics_port``); it reads the same files, so both answers agree.
Label children are cached: the hot path pays a dict lookup, not a label resolution.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from keel.scrape import ScrapeServer

__all__ = ["MULTIPROC_ENV", "Metrics", "metrics_port", "workers_text"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LATENCY = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """Request counts, latencies, model time, batch sizes, cache and limit counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "keel_requests",
            "Requests by route, status, model version and fallback.",
            ["route", "status", "model_version", "fallback"],
            registry=r,
        )
        self.latency = Histogram(
            "keel_request_seconds", "Request latency.", ["route"], buckets=_LATENCY, registry=r
        )
        self.model_time = Histogram(
            "keel_model_seconds", "Time of one model call.", buckets=_LATENCY, registry=r
        )
        self.batch_size = Histogram(
            "keel_batch_rows", "Rows per model call.", buckets=_SIZES, registry=r
        )
        self.cache = Counter("keel_cache", "Response cache lookups.", ["result"], registry=r)
        self.rate_limited = Counter("keel_rate_limited", "Requests refused with 429.", registry=r)
        self.load_failures = Counter(
            "keel_model_load_failures", "Models that failed to load.", registry=r
        )
        self.log_errors = Counter(
            "keel_prediction_log_errors", "Prediction log writes that failed.", registry=r
        )
        self.shadow_dropped = Counter(
            "keel_shadow_dropped", "Requests not sent to the shadow (queue full).", registry=r
        )
        self.shadow_errors = Counter(
            "keel_shadow_errors", "Shadow calls that failed or took too long.", registry=r
        )
        self.model_info = Gauge(
            "keel_model_loaded",
            "1 for the model version this worker serves.",
            ["model_version"],
            multiprocess_mode="liveall",
            registry=r,
        )
        self._children: dict[tuple[str, ...], Any] = {}
        self._hit = self.cache.labels("hit")
        self._miss = self.cache.labels("miss")

    def request(
        self, route: str, status: int, version: str, fallback: str | None, seconds: float
    ) -> None:
        key = (route, str(status), version, fallback or "")
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(*key)
        child.inc()
        timer = self._children.get((route,))
        if timer is None:
            timer = self._children[(route,)] = self.latency.labels(route)
        timer.observe(seconds)

    def batch(self, rows: int, seconds: float) -> None:
        self.batch_size.observe(rows)
        self.model_time.observe(seconds)

    def cache_lookup(self, hit: bool) -> None:
        (self._hit if hit else self._miss).inc()

    def serving(self, version: str, previous: str | None) -> None:
        if previous is not None:
            self.model_info.labels(previous).set(0)
        self.model_info.labels(version).set(1)

    def render(self) -> bytes:
        """The exposition text: this process's metrics, or every worker's summed."""
        if os.environ.get(MULTIPROC_ENV):
            return workers_text()
        return generate_latest(self.registry)


def workers_text() -> bytes:
    """Every worker's metrics summed, from the files in ``PROMETHEUS_MULTIPROC_DIR``."""
    combined = CollectorRegistry()
    MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
    return generate_latest(combined)


def metrics_port(host: str, port: int) -> ScrapeServer:
    """``/metrics`` (every worker's, summed) on ``host:port`` without a key, and nothing
    else; bound now, started by ``keel.serving.runner`` once the workers' folder exists."""
    from keel.errors import ServingError
    from keel.scrape import ScrapeServer, bind_failure

    try:
        return ScrapeServer(host, port, {"/metrics": _scrape})
    except OSError as error:
        raise ServingError(bind_failure(error, host, port, "serving.metrics")) from None


def _scrape() -> tuple[int, str, bytes]:
    return 200, CONTENT_TYPE_LATEST, workers_text()
