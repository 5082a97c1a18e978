"""Replicas sharing Redis: one response cache and one rate limit between them."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from keel.project import Project
from keel.serving import create_app
from tests.serving.helpers import GOOD, auth, backend, client, create_key, write_config

pytestmark = [pytest.mark.redis, pytest.mark.anyio]


async def test_a_second_replica_serves_the_first_ones_cached_answer(
    project_dir: Path, redis_url: str
) -> None:
    """Two apps on one Redis cache: an answer computed by one is a hit in the other."""
    write_config(project_dir, f"cache: {{ttl: 30s, url: '{redis_url}'}}\nrate_limit: 100/second")
    instance = {**GOOD, "spend": round(random.uniform(40, 60), 6)}  # fresh across runs
    with Project.open(project_dir) as project:
        key = create_key(project)
        async with client(create_app(project, model=backend())) as first:
            await first.post("/v1/predict", json={"instance": instance}, headers=auth(key))
        async with client(create_app(project, model=backend())) as second:
            response = await second.post(
                "/v1/predict", json={"instance": instance}, headers=auth(key)
            )
    assert response.json()["predictions"][0]["cached"] is True


async def test_replicas_share_one_rate_limit(project_dir: Path, redis_url: str) -> None:
    """With rate_limit_url, 3/minute holds across two apps: the fourth request is refused."""
    write_config(project_dir, f"rate_limit: 3/minute\nrate_limit_url: '{redis_url}'")
    with Project.open(project_dir) as project:
        key = create_key(project)
        apps = [create_app(project, model=backend()) for _ in range(2)]
        async with client(apps[0]) as a, client(apps[1]) as b:
            codes = [
                (await c.get("/v1/status", headers=auth(key))).status_code for c in (a, b, a, b)
            ]
    assert codes == [200, 200, 200, 429]


async def test_an_unreachable_cache_and_limit_store_do_not_fail_requests(project_dir: Path) -> None:
    """With Redis for cache and limits unreachable, predictions are still answered."""
    dead = "redis://127.0.0.1:1/0"
    write_config(project_dir, f"cache: {{ttl: 30s, url: '{dead}'}}\nrate_limit_url: '{dead}'")
    with Project.open(project_dir) as project:
        key = create_key(project)
        async with client(create_app(project, model=backend())) as c:
            response = await c.post("/v1/predict", json={"instance": GOOD}, headers=auth(key))
    assert response.status_code == 200
    assert response.json()["predictions"][0]["fallback"] is None
