"""The gateway: every route but the health checks needs a key, with the right scope."""

from __future__ import annotations

import pytest

from keel.project import Project
from keel.serving import KeyStore, create_app
from tests.serving.helpers import GOOD, auth, backend, client, create_key

OPEN = {"/healthz", "/readyz"}
DOCS = {"/docs", "/docs/oauth2-redirect", "/openapi.json"}  # public by default (serving.docs)


@pytest.mark.anyio
async def test_every_route_but_health_refuses_a_request_without_a_key(project: Project) -> None:
    """Enumerating the app's routes: each one answers 401 without a key, but the health
    checks and (by default) the API docs."""
    app = create_app(project, model=backend())
    routes = [(path, method) for path, methods in app.routes for method in methods]
    assert len(routes) > 6
    async with client(app) as c:
        for path, method in routes:
            response = await c.request(method, path)
            expected = 200 if path in OPEN | DOCS else 401
            assert response.status_code == expected, (method, path)


@pytest.mark.anyio
async def test_an_unknown_path_also_needs_a_key(project: Project) -> None:
    """A path no route serves answers 401, not 404, to a request without a key."""
    async with client(create_app(project, model=backend())) as c:
        assert (await c.get("/admin/secret")).status_code == 401


@pytest.mark.anyio
@pytest.mark.parametrize("header", ["Bearer keel_0123456789ab_nope", "Basic abc", "Bearer "])
async def test_a_wrong_key_is_refused(project: Project, header: str) -> None:
    """A key that is not in the store gets 401 with a WWW-Authenticate header."""
    async with client(create_app(project, model=backend())) as c:
        response = await c.post(
            "/v1/predict", json={"instance": GOOD}, headers={"Authorization": header}
        )
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


@pytest.mark.anyio
async def test_a_revoked_key_is_refused(project: Project) -> None:
    """A key revoked before the server loads its keys gets 401."""
    key = create_key(project)
    KeyStore(project.store).revoke("test")
    async with client(create_app(project, model=backend())) as c:
        response = await c.post("/v1/predict", json={"instance": GOOD}, headers=auth(key))
    assert response.status_code == 401


@pytest.mark.anyio
async def test_a_revocation_reaches_a_running_server(project: Project) -> None:
    """Once the key ring refreshes, a key revoked while serving is refused."""
    key = create_key(project)
    app = create_app(project, model=backend())
    async with client(app) as c:
        assert (await c.get("/v1/status", headers=auth(key))).status_code == 200
        KeyStore(project.store).revoke("test")
        await app.lifecycle.refresh_keys()
        assert (await c.get("/v1/status", headers=auth(key))).status_code == 401


@pytest.mark.anyio
async def test_a_key_with_the_wrong_scope_gets_403(project: Project) -> None:
    """A feedback-only key may not predict, and a predict key may not read metrics."""
    feedback_key = create_key(project, "feedback")
    predict_key = create_key(project, "predict")
    async with client(create_app(project, model=backend())) as c:
        refused = await c.post("/v1/predict", json={"instance": GOOD}, headers=auth(feedback_key))
        metrics = await c.get("/metrics", headers=auth(predict_key))
    assert refused.status_code == 403 and metrics.status_code == 403


@pytest.mark.anyio
async def test_the_key_may_come_in_x_api_key(project: Project) -> None:
    """Clients that cannot set Authorization may send X-API-Key."""
    key = create_key(project)
    async with client(create_app(project, model=backend())) as c:
        response = await c.post("/v1/predict", json={"instance": GOOD}, headers={"X-API-Key": key})
    assert response.status_code == 200
