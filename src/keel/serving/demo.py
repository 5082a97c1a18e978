"""Serve the production model on loopback and send it real requests: the quickstart's
serving step, usable on its own (``serve_and_call(project, rows)``).

A uvicorn server runs in a background thread on a free 127.0.0.1 port, a short-lived
``predict`` key is created for the calls and revoked afterwards, and the answers come
back as they arrived over HTTP.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from keel.errors import ServingError

if TYPE_CHECKING:
    from keel.project import Project

__all__ = ["serve_and_call", "serving_on_loopback"]


@contextmanager
def serving_on_loopback(project: Project, ready_timeout: float = 60) -> Iterator[str]:
    """The project's server running in this process; yields its base URL."""
    import uvicorn

    from keel.serving.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = uvicorn.Config(
        create_app(project), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="keel-demo-server", daemon=True)
    thread.start()
    try:
        _wait_started(server, ready_timeout)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def serve_and_call(project: Project, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Start the server, POST each row to /v1/predict over HTTP, stop; return what came back."""
    import httpx

    from keel.serving.keys import KeyStore

    keys = KeyStore(project.store)
    key, record = keys.create("quickstart", ["predict"], "keel quickstart")
    try:
        with serving_on_loopback(project) as url:
            ready = httpx.get(f"{url}/readyz", timeout=5).json()
            headers = {"Authorization": f"Bearer {key}"}
            answers = [
                httpx.post(f"{url}/v1/predict", json={"instance": row}, headers=headers).json()
                for row in rows
            ]
    finally:
        keys.revoke(record.key_id)
    return {"url": url, "ready": ready, "answers": answers}


def _wait_started(server: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or server.should_exit:
            raise ServingError("the server did not start on loopback; see the log above")
        time.sleep(0.05)
