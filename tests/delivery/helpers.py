"""Helpers for the delivery tests: stage a model, run real `keel serve` replicas."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from keel.delivery.staging import StageKind, stage
from tests.helpers import free_port
from tests.serving.helpers import GOOD, auth, import_fitted


def stage_model(
    project: Any, tmp: Path, kind: StageKind, seed: int = 1, model: Any = None, share: float = 30
) -> Any:
    """Import a model (fitted with ``seed``, or ``model``) and stage it as ``kind``."""
    version = import_fitted(project, tmp, seed, model, prefix="staged")
    return stage(project, str(version.version), kind, share=share, force=True, reason="test")


async def traffic(project: Any, customers: int = 200, settle: float = 0.0) -> None:
    """One prediction per customer through an in-process server; ``settle`` seconds more
    before it stops, for a shadow to answer off the response path."""
    import asyncio

    from keel.serving import create_app
    from tests.serving.helpers import client, create_key

    key = create_key(project)
    async with client(create_app(project)) as c:
        for i in range(customers):
            row = {"tenure": 1 + i % 70, "spend": 35.0 + i % 30, "visits": i % 30}
            body = {"instance": {**row, "customer_id": f"c{i}"}}
            response = await c.post("/v1/predict", json=body, headers=auth(key))
            assert response.status_code == 200
        await asyncio.sleep(settle)


def stop(*processes: subprocess.Popen[bytes]) -> None:
    """End child processes with SIGTERM, all at once (SIGKILL after 30 s), and reap them."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve(root: Path, port: int) -> subprocess.Popen[bytes]:
    """A real `keel serve` replica of the project at ``root``, on loopback ``port``."""
    command = [sys.executable, "-m", "keel", "serve", "--port", str(port), "-p", str(root)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextlib.contextmanager
def replicas(root: Path, count: int) -> Iterator[list[httpx.Client]]:
    """``count`` real servers of the project at ``root``, each with a client to it."""
    ports = [free_port() for _ in range(count)]
    with contextlib.ExitStack() as stack:
        stack.callback(stop, *(serve(root, port) for port in ports))
        yield [
            stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5))
            for port in ports
        ]


def answered_by(http: httpx.Client, key: str) -> str | None:
    """The model version that answered one prediction, or None if the server did not."""
    try:
        response = http.post("/v1/predict", json={"instance": GOOD}, headers=auth(key))
        return str(response.json()["model_version"]) if response.status_code == 200 else None
    except (httpx.TransportError, ValueError, KeyError):
        return None


def wait_for_answer(http: httpx.Client, key: str, model: str, seconds: float) -> float | None:
    """Predict until ``model`` answers: the UNIX time it first did, or None after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if answered_by(http, key) == model:
            return time.time()
        time.sleep(0.02)
    return None
