"""The dashboard is served by `keel serve` at /ui, behind its own key login."""

from __future__ import annotations

import pytest

from keel.project import Project
from keel.serving import create_app
from tests.serving.helpers import backend, client, create_key


@pytest.mark.anyio
async def test_ui_without_a_session_goes_to_the_login_form(project: Project) -> None:
    """/ui answers the dashboard's login redirect, not the gateway's 401."""
    async with client(create_app(project, model=backend())) as c:
        response = await c.get("/ui/")
    assert response.status_code in (302, 303, 307)
    assert "/ui/login" in response.headers["location"]


@pytest.mark.anyio
async def test_signing_in_with_a_key_shows_the_overview(project: Project) -> None:
    """A viewer key signs in; the overview shows the served model's health."""
    key = create_key(project, "viewer")
    async with client(create_app(project, model=backend())) as c:
        login = await c.post(
            "/ui/login",
            data={"api_key": key, "next": "/ui/"},
            headers={"origin": "http://t"},
        )
        assert login.status_code == 303
        page = await c.get("/ui/")  # the client keeps the session cookie
    assert page.status_code == 200
    assert "churn@1" in page.text


@pytest.mark.anyio
async def test_a_wrong_key_is_refused_at_login(project: Project) -> None:
    """A wrong key gets the login form again with a 401."""
    async with client(create_app(project, model=backend())) as c:
        response = await c.post(
            "/ui/login",
            data={"api_key": "keel_nope_nope", "next": "/ui/"},
            headers={"origin": "http://t"},
        )
    assert response.status_code == 401
