"""Three real `keel serve` replicas sharing one PostgreSQL store, and `keel rollback`.

Every replica polls the registry on its own, so a rollback written once must reach all of
them. How soon is a target (2 s), measured by ``benchmarks/bench_rollback.py --replicas 3``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.project import Project
from tests.delivery.helpers import answered_by, replicas, wait_for_answer
from tests.helpers import keel
from tests.serving.helpers import create_key, register_model

CONFIG = "name: churn\nstore: '{store}'\nserving:\n  rate_limit: 100000/second\n"


@pytest.mark.postgres
def test_after_a_rollback_every_replica_on_postgresql_serves_the_previous_version(
    project_dir: Path, tmp_path: Path, postgres_url: str
) -> None:
    """v2 serves on three replicas; after `keel rollback` each of them answers with v1."""
    (project_dir / "keel.yaml").write_text(CONFIG.format(store=postgres_url))
    with Project.open(project_dir) as project:
        register_model(project, tmp_path, seed=0)
        register_model(project, tmp_path, seed=1)
        key = create_key(project)
    with replicas(project_dir, 3) as servers:
        assert all(wait_for_answer(http, key, "churn@2", 90) for http in servers)
        done = keel("rollback", "--reason", "v2 misbehaves", "-p", str(project_dir))
        assert done.returncode == 0, done.stderr
        switched = [wait_for_answer(http, key, "churn@1", 30) for http in servers]
        assert all(switched), f"replicas still on v2: {switched}"
        assert {answered_by(http, key) for http in servers for _ in range(5)} == {"churn@1"}
