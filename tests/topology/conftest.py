"""One topology for the whole folder: the drills run on it in turn, as they would in
production, so the suite pays its start-up once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import POSTGRES_URL, REDIS_URL, require_service
from tests.helpers import postgres_schema
from tests.topology.harness import Topology


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    """Three ready replicas and a worker, v2 in production (v1 before it)."""
    require_service("PostgreSQL", POSTGRES_URL)
    require_service("Redis", REDIS_URL)
    tmp = tmp_path_factory.mktemp("topology")
    root = tmp / "project"
    root.mkdir()
    with postgres_schema(POSTGRES_URL) as store:
        cluster = Topology(root, store, REDIS_URL, artifacts=str(tmp / "artifacts"))
        try:
            cluster.create(tmp)
            cluster.start()
            yield cluster
        finally:
            try:
                if cluster.key:
                    cluster.clear_features()  # the shared Redis keeps no keys of this run
            finally:
                cluster.stop()
