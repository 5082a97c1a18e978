"""Failure drills on a production topology: three `keel serve` replicas and a `keel worker`
sharing PostgreSQL, Redis and an artifact location, under load through a health-checking
balancer (see ``harness``). The drills run in this file's order on one topology, each
leaving it as it found it: three ready replicas, every server reachable.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass

import pytest

from tests.topology.harness import Load, Tally, Topology, traffic, wait_for_version

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

CUT_S = 30.0


def test_a_replica_killed_under_load_loses_no_acknowledged_prediction(
    topology: Topology,
) -> None:
    """kill -9 one replica under load, restart it: every prediction the load got an answer
    for, the killed replica's included, is in the log the worker ships; the only failures
    are requests that were in flight on the killed replica (at most one per client)."""
    victim = topology.replicas[0]
    with traffic(topology) as (_, load):
        load.phase = "before"
        load.wait_for(90)
        load.phase = "killed"
        victim.signal(signal.SIGKILL)
        victim.wait()
        load.wait_for(60)
        victim.start()
        assert victim.wait_ready(), victim.output()
        load.phase = "after"
        load.wait_for(60)
    acknowledged = load.acknowledged
    on_victim = [
        i for t in load.tallies.values() for i, r in t.acknowledged.items() if r == victim.name
    ]
    failed = sum(sum(t.failures.values()) for t in load.tallies.values())
    missing = topology.missing_from_log(acknowledged)
    assert len(acknowledged) >= 200 and len(on_victim) >= 20
    assert failed <= 3, load.tallies
    assert len(missing) == 0, f"{len(missing)} of {len(acknowledged)} acknowledged not logged"


def test_a_redis_cut_answers_every_request_with_the_rule_then_the_model_again(
    topology: Topology,
) -> None:
    """Redis unreachable: every request sent during the cut is answered (200) by the
    fallback rule, marked ``fallback: rule`` (no ``features_missing``: that names the
    features of an entity the store has no row for, not an outage); none fails. Once
    Redis is back, the model answers again."""
    with traffic(topology) as (_, load):
        load.phase = "before"
        load.wait_for(50)
        load.phase = "cut"
        topology.redis_relay.cut()
        load.wait_for(150)
        load.phase = "restoring"
        topology.redis_relay.restore()
        time.sleep(2)
        load.phase = "after"
        load.wait_for(100)
    cut, after = load.tally("cut"), load.tally("after")
    assert cut.requests >= 150 and not cut.failures, load.tallies
    assert cut.answers == {"fallback rule": cut.requests} and cut.features_missing == 0
    assert after.answers == {"model": after.requests} and after.requests >= 100, load.tallies


@dataclass
class PostgresCut:
    """What a 30 s PostgreSQL cut did: the load's outcomes, and the replica restarted in it."""

    load: Load
    stopped_with: int | None  # the SIGTERM'd replica's exit code
    restarted_ready: bool  # the replica started during the cut became ready before it ended
    restarted_exit: int | None  # its exit code if it gave up during the cut
    restarted_said: str  # what it wrote


@pytest.fixture(scope="module")
def postgres_cut(topology: Topology) -> PostgresCut:
    """Cut PostgreSQL under load for 30 s, or longer until one replica restarted at the
    cut's start (SIGTERM, start) has become ready or given up: a slow start must not pass
    for a start the cut prevented."""
    restarted = topology.replicas[2]
    with traffic(topology) as (_, load):
        load.phase = "before"
        load.wait_for(50)
        load.phase = "cut"
        topology.pg_relay.cut()
        ends = time.monotonic() + CUT_S
        stopped_with = restarted.stop()
        restarted.start()
        ready = restarted.wait_ready(180)  # False as soon as it exits
        assert restarted.process is not None
        gave_up = restarted.process.poll()
        time.sleep(max(0.0, ends - time.monotonic()))
        load.phase = "restored"
        topology.pg_relay.restore()
        said = restarted.output().rsplit("--- ", 1)[-1]
        if not ready:
            restarted.stop()
            restarted.start()
        assert restarted.wait_ready(), restarted.output()
        load.wait_for(50)
    return PostgresCut(load, stopped_with, ready, gave_up, said)


def test_a_postgresql_cut_leaves_every_request_answered_by_the_model(
    postgres_cut: PostgresCut,
) -> None:
    """With the metadata store unreachable for 30 s (and one replica restarted in it),
    every request sent during the cut is answered by the model: keys, model and the log's
    spool need no store on the predict path. None fails."""
    cut = postgres_cut.load.tally("cut")
    assert cut.requests >= 150 and not cut.failures, postgres_cut.load.tallies
    assert cut.answers == {"model": cut.requests}


def test_predictions_answered_during_a_postgresql_cut_reach_the_log_after_it(
    topology: Topology, postgres_cut: PostgresCut
) -> None:
    """The log's segments cannot be committed while the store is cut; once it is back the
    worker commits them: no prediction acknowledged during the cut is missing."""
    acknowledged = postgres_cut.load.acknowledged
    missing = topology.missing_from_log(acknowledged)
    assert len(acknowledged) >= 300
    assert len(missing) == 0, f"{len(missing)} of {len(acknowledged)} acknowledged not logged"


def test_a_replica_restarted_during_a_postgresql_cut_becomes_ready(
    postgres_cut: PostgresCut,
) -> None:
    """A replica restarted while PostgreSQL is cut serves again before the cut ends."""
    cut = postgres_cut
    assert cut.restarted_ready, f"exit code {cut.restarted_exit}: {cut.restarted_said}"


def test_a_rolling_restart_under_load_fails_no_request(topology: Topology) -> None:
    """SIGTERM, restart and wait for readiness, one replica after the other, under load:
    the balancer stops sending to a draining replica, and every request is answered."""
    with traffic(topology) as (balancer, load):
        load.phase = "before"
        load.wait_for(50)
        load.phase = "rolling"
        for replica in topology.replicas:
            assert replica.stop() == 0, replica.output()
            replica.start()
            assert replica.wait_ready(), replica.output()
            deadline = time.monotonic() + 30
            while not balancer.healthy[replica.name] and time.monotonic() < deadline:
                time.sleep(0.05)
            load.wait_for(30)
        load.phase = "after"
        load.wait_for(30)
    rolling: Tally = load.tally("rolling")
    assert rolling.requests >= 90 and rolling.failures == {}, load.tallies
    assert sum(t.requests for t in load.tallies.values()) == len(load.acknowledged)


def test_a_rollback_reaches_every_replica(topology: Topology) -> None:
    """`keel rollback` from v2: each of the three replicas answers with v1."""
    previous, current = topology.versions
    assert all(wait_for_version(r, topology.key, current, 30) for r in topology.replicas)
    done = topology.keel("rollback", "--reason", "drill")
    assert done.returncode == 0, done.stderr
    switched = [wait_for_version(r, topology.key, previous, 30) for r in topology.replicas]
    assert None not in switched, switched
