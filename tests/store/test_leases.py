"""The lease contract, run on every metadata store backend."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from keel.errors import LeaseHeld
from keel.store import Lease, Leases, MetadataStore


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    opened = MetadataStore.open(store_url)
    yield opened
    opened.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def leases(store: MetadataStore, clock: Clock) -> Leases:
    return Leases(store.engine, clock=clock)


def test_first_holder_gets_the_lease(leases: Leases) -> None:
    """A free name is granted with token 1."""
    lease = leases.acquire("ingest:customers", "a", ttl=30)
    assert lease == Lease("ingest:customers", "a", 1, 1_030.0)


def test_second_holder_is_refused_while_live(leases: Leases) -> None:
    """Only one holder per name while the lease is live."""
    leases.acquire("job", "a", ttl=30)
    assert leases.acquire("job", "b", ttl=30) is None


def test_expired_lease_is_taken_over_with_a_new_token(leases: Leases, clock: Clock) -> None:
    """A holder that stops renewing loses the lease when it expires."""
    leases.acquire("job", "a", ttl=30)
    clock.now += 31
    taken = leases.acquire("job", "b", ttl=30)
    assert taken is not None
    assert (taken.holder, taken.token) == ("b", 2)


def test_holder_can_reacquire_its_own_lease(leases: Leases) -> None:
    """Acquiring again as the same holder extends rather than refuses."""
    leases.acquire("job", "a", ttl=30)
    again = leases.acquire("job", "a", ttl=60)
    assert again is not None and again.expires_at == 1_060.0


def test_renew_extends_the_lease(leases: Leases, clock: Clock) -> None:
    """Renewing pushes the expiry forward so others stay out."""
    lease = leases.acquire("job", "a", ttl=30)
    assert lease is not None
    clock.now += 20
    leases.renew(lease, ttl=30)
    clock.now += 20
    assert leases.acquire("job", "b", ttl=30) is None


def test_renewing_a_lost_lease_raises(leases: Leases, clock: Clock) -> None:
    """A holder whose lease was taken over learns it on its next renewal."""
    lease = leases.acquire("job", "a", ttl=30)
    assert lease is not None
    clock.now += 31
    leases.acquire("job", "b", ttl=30)
    with pytest.raises(LeaseHeld, match="lost the lease"):
        leases.renew(lease, ttl=30)


def test_release_frees_the_name(leases: Leases) -> None:
    """After release another holder gets the lease at once."""
    lease = leases.acquire("job", "a", ttl=30)
    assert lease is not None
    leases.release(lease)
    assert leases.acquire("job", "b", ttl=30) is not None


def test_stale_release_does_not_free_a_new_holders_lease(leases: Leases, clock: Clock) -> None:
    """Releasing an old lease after a takeover leaves the new holder in place."""
    old = leases.acquire("job", "a", ttl=30)
    assert old is not None
    clock.now += 31
    leases.acquire("job", "b", ttl=30)
    leases.release(old)
    assert leases.acquire("job", "c", ttl=30) is None


def test_hold_refuses_a_busy_name_with_a_clear_message(store: MetadataStore) -> None:
    """The context manager raises LeaseHeld naming the job and its holder."""
    with (
        store.leases.hold("train", ttl=30, holder="worker-1"),
        pytest.raises(LeaseHeld, match=r"'train' is already running.*worker-1"),
        store.leases.hold("train", ttl=30),
    ):
        pass
    with store.leases.hold("train", ttl=30):
        pass  # released on exit: free again


def test_hold_renews_while_the_job_runs(store: MetadataStore) -> None:
    """A job longer than its ttl keeps its lease through background renewal."""
    with store.leases.hold("long", ttl=0.6, holder="runner"):
        time.sleep(1.5)
        assert store.leases.acquire("long", "intruder", ttl=10) is None


def test_racing_threads_get_one_winner(store: MetadataStore) -> None:
    """Many threads acquiring one fresh name at once: exactly one wins."""
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def contend(holder: str) -> None:
        barrier.wait()
        if store.leases.acquire("race", holder, ttl=30) is not None:
            winners.append(holder)

    threads = [threading.Thread(target=contend, args=(f"t{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1


_HOLD_FOREVER = """
import sys, time
from keel.store import MetadataStore
store = MetadataStore.open(sys.argv[1])
with store.leases.hold("nightly", ttl=1.0, holder="doomed"):
    print("held", flush=True)
    time.sleep(600)
"""


def test_lease_of_a_killed_holder_expires(store_url: str, store: MetadataStore) -> None:
    """A holder process killed with SIGKILL stops renewing; its lease expires."""
    with subprocess.Popen(
        [sys.executable, "-c", _HOLD_FOREVER, store_url], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "held"
            assert store.leases.acquire("nightly", "successor", ttl=30) is None
        finally:
            child.kill()
            child.wait(timeout=10)
    deadline = time.monotonic() + 10
    taken = None
    while taken is None and time.monotonic() < deadline:
        time.sleep(0.2)
        taken = store.leases.acquire("nightly", "successor", ttl=30)
    assert taken is not None and taken.token >= 2
