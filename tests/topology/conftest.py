"""One topology for the whole folder: the drills run on it in turn, as they would in
production, so the suite pays its start-up once. Its artifacts and log segments are on a
real S3 server (the session's SeaweedFS), reached through keel.yaml's ``storage:``
section: no ``AWS_*`` variable is set for any of its processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import POSTGRES_URL, REDIS_URL, require_service
from tests.helpers import postgres_schema
from tests.s3server import S3Server
from tests.topology.harness import SECRET_VAR, STORAGE, ShippedLog, Topology


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server) -> Iterator[Topology]:
    """Three ready replicas and a worker, v2 in production (v1 before it), artifacts and
    log segments in a fresh bucket."""
    require_service("PostgreSQL", POSTGRES_URL)
    require_service("Redis", REDIS_URL)
    tmp = tmp_path_factory.mktemp("topology")
    root = tmp / "project"
    root.mkdir()
    bucket = s3_server.create_bucket()
    storage = STORAGE.format(url=s3_server.url, key=s3_server.credentials["key"], secret=SECRET_VAR)
    env = {SECRET_VAR: s3_server.credentials["secret"]}
    with pytest.MonkeyPatch.context() as patch, postgres_schema(POSTGRES_URL) as store:
        patch.setenv(SECRET_VAR, env[SECRET_VAR])  # this process opens the project too
        artifacts = f"s3://{bucket}/keel"
        cluster = Topology(root, store, REDIS_URL, artifacts=artifacts, env=env, storage=storage)
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


@pytest.fixture(scope="module")
def shipped(topology: Topology, s3_server: S3Server) -> ShippedLog:
    """The topology's log as stored in its bucket, read without Keel."""
    return ShippedLog(s3_server.filesystem(), topology.artifacts.removeprefix("s3://"))
