"""Fixtures for the dashboard tests: a demo project, and the dashboard served for real."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from keel.project import Project
from keel.serving.keys import KeyStore
from tests.helpers import free_port
from tests.ui.demo import Demo, build_demo

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}


@contextmanager
def serving(root: Path) -> Iterator[str]:
    """The project's dashboard under uvicorn on a free loopback port; yields its base URL."""
    import uvicorn

    from keel.ui import create_ui_app

    with Project.open(root) as project:
        config = uvicorn.Config(
            create_ui_app(project), host="127.0.0.1", port=0, log_level="warning",
            lifespan="off", ws="none", access_log=False,
        )  # fmt: skip
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the dashboard did not start"
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(10)


@contextmanager
def keel_serve(root: Path, log: Path) -> Iterator[str]:
    """A `keel serve` process for ``root`` on a free loopback port, killed afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "keel", "serve", "--project", str(root), "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=ENV, stdout=out, stderr=out)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


def wait_live(url: str, seconds: float = 90) -> None:
    """Wait until the server answers ``/healthz`` (no model is needed for the dashboard)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not start")


@dataclass(frozen=True)
class Replicas:
    """Two dashboards over one store, the project folder of the first, and its keys."""

    a: str
    b: str
    root: Path
    viewer: str
    predict: str


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def replicas(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicas]:
    """Two project folders (two machines) whose keel.yaml name the same store, each served,
    as behind an ingress at 127.0.0.2: A trusts its X-Forwarded-* headers, B its Forwarded."""
    base = tmp_path_factory.mktemp(f"replicas-{request.param}")
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{base / 'shared.db'}"
        else:
            url = stack.enter_context(_postgres_schema())
        roots = [base / "a", base / "b"]
        for root, headers in zip(roots, ["x-forwarded", "forwarded"], strict=True):
            root.mkdir()
            proxy = f"{{trusted: [127.0.0.2/32], headers: {headers}}}"
            (root / "keel.yaml").write_text(
                f"name: shop\nstore: '{url}'\nserving:\n  proxy: {proxy}\n"
            )
        with Project.open(roots[0]) as project:
            viewer, _ = KeyStore(project.store).create("analyst", ["viewer"], "tester")
            predict, _ = KeyStore(project.store).create("app", ["predict"], "tester")
        a, b = (stack.enter_context(keel_serve(root, base / f"{root.name}.log")) for root in roots)
        wait_live(a)
        wait_live(b)
        yield Replicas(a, b, roots[0], viewer, predict)


@contextmanager
def _postgres_schema() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards (the
    conftest's ``postgres_url``, for a module-scoped fixture)."""
    from tests.conftest import POSTGRES_URL, require_service
    from tests.helpers import postgres_schema

    require_service("PostgreSQL", POSTGRES_URL)
    with postgres_schema(POSTGRES_URL) as url:
        yield url


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """One demo project shared by a module's read-only tests."""
    root = tmp_path_factory.mktemp("demo") / "project"
    root.mkdir()
    return build_demo(root)


@pytest.fixture(scope="module")
def base_url(demo: Demo) -> Iterator[str]:
    """The shared demo project's dashboard, served for the module."""
    with serving(demo.root) as url:
        yield url


@pytest.fixture
def fresh_demo(tmp_path: Path) -> Demo:
    """A demo project of this test's own, for tests that change it."""
    root = tmp_path / "project"
    root.mkdir()
    return build_demo(root)


@contextmanager
def sign_in(base: str, key: str) -> Iterator[httpx.Client]:
    """A client holding a session cookie for ``key``."""
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as client:
        response = client.post("/ui/login", data={"api_key": key, "next": "/ui/"})
        assert response.status_code == 303, response.text
        yield client


@pytest.fixture
def signed_in(base_url: str, demo: Demo) -> Iterator[Callable[[str], httpx.Client]]:
    """Make signed-in clients against the shared dashboard; closes them afterwards."""
    with ExitStack() as stack:
        yield lambda key: stack.enter_context(sign_in(base_url, key))


@dataclass(frozen=True)
class Empty:
    """A dashboard over a project with nothing in it but one key."""

    base: str
    key: str


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Empty]:
    """A project with no models, traffic, data or alerts, served; and a view-only key."""
    from keel.serving.keys import KeyStore

    root = tmp_path_factory.mktemp("empty") / "project"
    root.mkdir()
    (root / "keel.yaml").write_text("name: empty\n")
    with Project.open(root) as project:
        key, _ = KeyStore(project.store).create("solo", ["viewer"], "tester")
    with serving(root) as url:
        yield Empty(url, key)
