"""Run the server with uvicorn: one process, or several workers sharing the port.

Workers import ``keel.serving.runner:served_app`` and open the project named in
``KEEL_PROJECT``. With several workers, Prometheus multiprocess mode is switched on (a
fresh folder under ``.keel/metrics``) before any worker starts, so ``/metrics`` sums
every worker. uvicorn handles SIGTERM: it stops accepting, lets in-flight requests
finish, then runs the app's shutdown (which flushes the prediction log) and exits 0.
With ``serving.drain`` set, SIGTERM first makes ``/readyz`` answer 503 for that long
while every request is still served, so a load balancer polling it stops sending before
the port closes (a request sent on a connection the server is closing is lost to the
client, and a balancer does not resend a POST).
Workers get that SIGTERM too when the supervisor dies, even by SIGKILL (see
``keel.serving.orphan``), so none is left holding the port.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from keel.serverlogs import LogFormat, RequestIds, server_logging
from keel.serving.asgi import KeelApp
from keel.serving.headers import DEFAULT_HEADER_TIMEOUT_S, HEADER_TIMEOUT_ENV
from keel.serving.metrics import MULTIPROC_ENV

if TYPE_CHECKING:
    import uvicorn

    from keel.scrape import ScrapeServer

__all__ = [
    "PROJECT_ENV",
    "SUPERVISOR_ENV",
    "app_from_env",
    "drain_on_signals",
    "run_server",
    "served_app",
]

logger = logging.getLogger("keel.serving")

PROJECT_ENV = "KEEL_PROJECT"
SUPERVISOR_ENV = "KEEL_SUPERVISOR_PID"  # set for workers: they exit when it dies
_GRACE_S = 30


def app_from_env() -> KeelApp:
    """The app for the project in ``KEEL_PROJECT`` (uvicorn's factory in each worker)."""
    from keel.project import Project
    from keel.serving.app import create_app
    from keel.serving.orphan import exit_with_parent

    supervisor = os.environ.get(SUPERVISOR_ENV)
    if supervisor:
        exit_with_parent(int(supervisor))
    app = create_app(Project.open(os.environ[PROJECT_ENV]))
    app.lifecycle.freeze_gc = True  # this process only serves: see Lifecycle.start
    drain_on_signals(app, app.state.settings.drain.total_seconds())
    return app


def served_app() -> RequestIds:
    """What uvicorn serves: ``app_from_env`` behind request ids (see keel.serverlogs)."""
    return RequestIds(app_from_env())


def drain_on_signals(app: KeelApp, seconds: float) -> None:
    """Put a drain in front of the server's SIGTERM and SIGINT handlers: readiness fails
    at once, the server's own shutdown starts ``seconds`` later; a second signal does not
    wait. uvicorn calls this factory after installing its handlers, so they are wrapped."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        return
    stops = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    drain = _Drain(app, seconds, {sig: stop for sig, stop in stops.items() if callable(stop)})
    for sig in drain.stops:
        signal.signal(sig, drain)


class _Drain:
    """A signal handler: the first signal starts the drain, a later one stops at once."""

    def __init__(
        self,
        app: KeelApp,
        seconds: float,
        stops: dict[int, Callable[[int, FrameType | None], Any]],
    ) -> None:
        self.app, self.seconds, self.stops = app, seconds, stops
        self.timer: threading.Timer | None = None

    def __call__(self, sig: int, frame: FrameType | None) -> None:
        if self.timer is not None:  # a second signal: the server's own handler, now
            self.timer.cancel()
            self.stops[sig](sig, frame)
            return
        self.app.state.draining = True
        logger.warning("draining: /readyz answers 503, shutting down in %g s", self.seconds)
        self.timer = threading.Timer(self.seconds, self.stops[sig], args=(sig, None))
        self.timer.daemon = True
        self.timer.start()


def run_server(
    root: Path,
    host: str,
    port: int,
    workers: int,
    *,
    keep_alive: float,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT_S,
    log_format: LogFormat = "text",
    metrics: ScrapeServer | None = None,
) -> None:
    """Serve until SIGTERM or Ctrl-C; return (exit code 0) after a graceful shutdown.

    Idle connections stay open ``keep_alive`` seconds: longer than clients keep them (httpx
    5 s, load balancers about 60 s), so the client closes first. Were the server to close
    first, a request the client sends at that moment would meet a closed connection. A
    connection gets ``header_timeout`` seconds to send a request's headers (see
    ``keel.serving.headers``). ``log_format`` picks text or JSON lines on stderr.
    ``metrics`` (``serving.metrics``'s port) is served by the supervisor from the workers'
    files, so with it even one worker runs under a supervisor.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    os.environ[PROJECT_ENV] = str(root)
    os.environ[HEADER_TIMEOUT_ENV] = str(header_timeout)
    os.environ.pop(SUPERVISOR_ENV, None)
    supervised = workers > 1 or metrics is not None
    if supervised:
        os.environ[SUPERVISOR_ENV] = str(os.getpid())
        folder = root / ".keel" / "metrics"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        os.environ[MULTIPROC_ENV] = str(folder)
    config = uvicorn.Config(
        "keel.serving.runner:served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **server_logging(log_format),
        timeout_graceful_shutdown=_GRACE_S,
        timeout_keep_alive=max(1, math.ceil(keep_alive)),
        lifespan="on",
        http="keel.serving.headers:HeaderTimeoutProtocol",
        proxy_headers=False,  # forwarded headers are believed per serving.proxy, not by default
    )
    if supervised:
        # each worker runs uvicorn's own server; the supervisor exits 0 after stopping them
        if metrics is not None:
            metrics.start()
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        _serve(uvicorn.Server(config))


def _serve(server: uvicorn.Server) -> None:
    """Run ``server`` and return after a graceful shutdown (exit 0).

    uvicorn puts its own SIGTERM and SIGINT handlers in place while it serves, and once it
    has shut down it restores the handlers it found and raises the signal again for them.
    The ones it finds are these: they ask the server to stop (a signal before uvicorn's
    handlers are in place), which after the shutdown does nothing, so the re-raised signal
    ends no process and ``run_server`` returns.
    """

    def stop(sig: int, frame: FrameType | None) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
