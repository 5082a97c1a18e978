"""Fixtures for the dashboard tests: a demo project, and the dashboard served for real."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from keel.project import Project
from tests.ui.demo import Demo, build_demo


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
