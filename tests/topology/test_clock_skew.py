"""A process whose clock is 5 minutes ahead (libfaketime) on a shared PostgreSQL store:
it cannot take a lease another process holds, because expiry is read on the database's
clock, not on the caller's."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from keel.store import MetadataStore
from tests.conftest import POSTGRES_URL, require_service
from tests.helpers import postgres_schema
from tests.topology.harness import process_env, skewed_clock

pytestmark = [pytest.mark.postgres]

TAKE = """\
import sys, time
from keel.store import MetadataStore
store = MetadataStore.open(sys.argv[1])
lease = store.leases.acquire("keel:registry:deploy", "skewed-replica", ttl=30)
print(time.time(), lease is not None)
"""


@pytest.fixture
def store_url() -> Iterator[str]:
    """A fresh schema on the test PostgreSQL."""
    require_service("PostgreSQL", POSTGRES_URL)
    with postgres_schema(POSTGRES_URL) as url:
        yield url


def test_a_process_5_minutes_ahead_does_not_take_a_live_lease(store_url: str) -> None:
    """This process holds the deploy lease for 30 s; a process whose clock says 5 minutes
    later (its own time.time() shows it) is refused the lease, which stays this one's."""
    store = MetadataStore.open(store_url)
    try:
        held = store.leases.acquire("keel:registry:deploy", "this-process", ttl=30)
        done = subprocess.run(
            [sys.executable, "-c", TAKE, store_url],
            env=process_env(skewed_clock()),
            capture_output=True,
            text=True,
            timeout=120,
        )
        now = time.time()
        current = store.leases.current("keel:registry:deploy")
    finally:
        store.close()
    their_time, took = done.stdout.split()
    assert done.returncode == 0, done.stderr
    assert held is not None and 290 < float(their_time) - now < 310
    assert took == "False" and current is not None and current.holder == "this-process"
