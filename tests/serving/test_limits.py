"""Per-key rate limits and the body size limit on every route."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.project import Project
from keel.serving import create_app
from tests.serving.helpers import GOOD, auth, backend, client, create_key, write_config


@pytest.mark.anyio
async def test_a_burst_over_the_limit_gets_429_with_retry_after(project_dir: Path) -> None:
    """With 5/minute, the sixth request in a burst is refused with Retry-After."""
    write_config(project_dir, "rate_limit: 5/minute")
    with Project.open(project_dir) as project:
        key = create_key(project)
        async with client(create_app(project, model=backend())) as c:
            codes = [
                (await c.post("/v1/predict", json={"instance": GOOD}, headers=auth(key)))
                for _ in range(6)
            ]
    assert [r.status_code for r in codes] == [200] * 5 + [429]
    assert 1 <= int(codes[-1].headers["retry-after"]) <= 60


@pytest.mark.anyio
async def test_limits_are_per_key(project_dir: Path) -> None:
    """One key spending its limit leaves another key's requests untouched."""
    write_config(project_dir, "rate_limit: 2/minute")
    with Project.open(project_dir) as project:
        first, second = create_key(project), create_key(project)
        async with client(create_app(project, model=backend())) as c:
            for _ in range(3):
                await c.get("/v1/status", headers=auth(first))
            other = await c.get("/v1/status", headers=auth(second))
    assert other.status_code == 200


@pytest.mark.anyio
async def test_a_key_may_carry_its_own_limit(project: Project) -> None:
    """A key created with its own rate limit is held to it."""
    key = create_key(project, rate_limit="1/minute")
    async with client(create_app(project, model=backend())) as c:
        codes = [(await c.get("/v1/status", headers=auth(key))).status_code for _ in range(2)]
    assert codes == [200, 429]


@pytest.mark.anyio
async def test_a_large_body_on_a_slow_route_gets_413(project_dir: Path) -> None:
    """The size limit guards feedback too, from the Content-Length header."""
    write_config(project_dir, "max_body_kb: 1\nrate_limit: 100/second")
    with Project.open(project_dir) as project:
        key = create_key(project, "feedback")
        body = {"feedback": [{"prediction_id": f"p{i}", "label": 1} for i in range(200)]}
        async with client(create_app(project, model=backend())) as c:
            response = await c.post("/v1/feedback", json=body, headers=auth(key))
    assert response.status_code == 413
