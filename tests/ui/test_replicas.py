"""Two real `keel serve` replicas sharing one metadata store (SQLite, then PostgreSQL) give
one dashboard: a session started on one is honoured, ended and revoked on both."""

from __future__ import annotations

import re
import time

import httpx

from keel.project import Project
from keel.serving.keys import KeyStore
from keel.ui.session import SessionBook
from tests.ui.conftest import Replicas


def login(base: str, key: str) -> str:
    """Sign in on ``base``; the session cookie's value."""
    response = httpx.post(f"{base}/ui/login", data={"api_key": key, "next": "/ui/"}, timeout=30)
    assert response.status_code == 303, response.text
    return response.cookies["keel_session"]


def overview(base: str, cookie: str) -> httpx.Response:
    """The overview page with ``cookie`` (303 to the login form when it is no session)."""
    return httpx.get(f"{base}/ui/", cookies={"keel_session": cookie}, timeout=30)


def logout(base: str, cookie: str) -> None:
    page = overview(base, cookie).text
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match is not None, "no CSRF token on the page"
    response = httpx.post(
        f"{base}/ui/logout",
        data={"csrf": match.group(1)},
        cookies={"keel_session": cookie},
        timeout=30,
    )
    assert response.status_code == 303


def test_a_login_on_one_replica_is_valid_on_the_other(replicas: Replicas) -> None:
    """The cookie from replica A opens the overview on replica B, as the same viewer."""
    cookie = login(replicas.a, replicas.viewer)
    page = overview(replicas.b, cookie)
    assert page.status_code == 200 and "analyst (view only)" in page.text


def test_logout_on_one_replica_ends_a_copied_cookie_everywhere(replicas: Replicas) -> None:
    """After signing out on B, a copy of the cookie is refused on A and on B."""
    cookie = login(replicas.a, replicas.viewer)
    assert overview(replicas.a, cookie).status_code == 200
    logout(replicas.b, cookie)
    assert [overview(url, cookie).status_code for url in (replicas.a, replicas.b)] == [303, 303]


def test_sessions_survive_a_rotation_and_new_ones_use_the_new_secret(replicas: Replicas) -> None:
    """A rotation (from any machine): a session signed before it still works on both
    replicas, and a login after it is signed with the new generation and works on both."""
    before = login(replicas.a, replicas.viewer)
    with Project.open(replicas.root) as project:
        SessionBook(project.store).rotate(time.time())
    after = login(replicas.b, replicas.viewer)
    assert after.split(".")[0] == str(int(before.split(".")[0]) + 1)
    codes = [
        overview(url, c).status_code for url in (replicas.a, replicas.b) for c in (before, after)
    ]
    assert codes == [200] * 4


def test_a_predict_key_cannot_sign_in(replicas: Replicas) -> None:
    """The key built into client apps gets 403 at the login form and no cookie."""
    response = httpx.post(
        f"{replicas.a}/ui/login", data={"api_key": replicas.predict, "next": "/ui/"}, timeout=30
    )
    assert response.status_code == 403 and "keel_session" not in response.cookies
    assert "viewer or admin scope" in response.text


def test_a_viewer_key_cannot_predict(replicas: Replicas) -> None:
    """The gateway refuses a viewer key on /v1/predict with 403."""
    response = httpx.post(
        f"{replicas.b}/v1/predict",
        json={"instance": {}},
        headers={"authorization": f"Bearer {replicas.viewer}"},
        timeout=30,
    )
    assert response.status_code == 403


def test_revoking_the_key_ends_its_sessions_on_every_replica(replicas: Replicas) -> None:
    """Revoking a key ends the sessions it started, on both replicas at once."""
    with Project.open(replicas.root) as project:
        key, _ = KeyStore(project.store).create("temp", ["viewer"], "tester")
    cookies = [login(replicas.a, key), login(replicas.b, key)]
    with Project.open(replicas.root) as project:
        KeyStore(project.store).revoke("temp")
    codes = [overview(url, c).status_code for url in (replicas.a, replicas.b) for c in cookies]
    assert codes == [303] * 4
