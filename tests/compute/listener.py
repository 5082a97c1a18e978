"""Something listening at an address that is not a Dask scheduler, as its own process for
the tests that point compute.address at it. ``python listener.py silent`` accepts every
connection and never writes (a stale forwarded port, a load balancer with no backend);
``python listener.py http`` is an HTTP server (uvicorn), which answers bytes it cannot
parse with an error. Either prints its loopback port once it listens, then serves until
killed."""

from __future__ import annotations

import socket
import sys
from typing import Any


def silent(listening: socket.socket) -> None:
    held = []
    while True:
        connection, _ = listening.accept()
        held.append(connection)  # kept open, never written to


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An HTTP app answering every request with 200 and a line of text."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"not a Dask scheduler\n"})


def http(listening: socket.socket) -> None:
    import uvicorn

    uvicorn.Server(uvicorn.Config(app, log_level="critical")).run(sockets=[listening])


def main() -> None:
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(64)
    print(listening.getsockname()[1], flush=True)
    {"silent": silent, "http": http}[sys.argv[1]](listening)


if __name__ == "__main__":
    main()
