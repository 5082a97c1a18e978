"""Failure drills on a production topology: three `keel serve` replicas and a `keel worker`
on another "machine", sharing PostgreSQL, Redis and an S3 bucket, under load through a
health-checking balancer (see ``harness``). The drills run in this file's order on one
topology, each leaving it as it found it: three ready replicas, every server reachable
(one exception: the replica the clock drill set 5 minutes ahead stays so through the
Redis and PostgreSQL drills, which do not depend on its clock, until the rolling restart
starts it with the true clock).
"""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass

import pandas as pd
import pytest

from tests.s3server import S3Server
from tests.topology.harness import (
    Balancer,
    Load,
    Replica,
    ShippedLog,
    Tally,
    Topology,
    skewed_clock,
    traffic,
    wait_for_version,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

CUT_S = 30.0
S3_DOWN_S = 15.0  # half the PostgreSQL cut: 150+ requests and 7 failed flushes fit in it


def test_a_replica_killed_under_load_loses_no_acknowledged_prediction(
    topology: Topology,
) -> None:
    """kill -9 one replica under load, restart it: every prediction the load got an answer
    for, the killed replica's included, is in the log the replicas ship; the only failures
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


@pytest.fixture(scope="module")
def s3_outage(topology: Topology, s3_server: S3Server) -> Load:
    """Stop the S3 server under load for ``S3_DOWN_S`` seconds, then start it again (same
    address, same data)."""
    with traffic(topology) as (_, load):
        load.phase = "before"
        load.wait_for(30)
        load.phase = "down"
        ends = time.monotonic() + S3_DOWN_S
        s3_server.stop()
        time.sleep(max(0.0, ends - time.monotonic()))
        load.phase = "restarting"
        s3_server.start()
        load.phase = "after"
        load.wait_for(30)
    return load


def test_an_s3_outage_fails_no_prediction(s3_outage: Load) -> None:
    """With the S3 server stopped for 15 s, every request is answered by the model:
    a prediction is acknowledged once it is in the replica's spool, not in the bucket."""
    down = s3_outage.tally("down")
    failed = {phase: t.failures for phase, t in s3_outage.tallies.items() if t.failures}
    assert down.requests >= 150 and failed == {}, s3_outage.tallies
    assert down.answers == {"model": down.requests}


def test_predictions_acknowledged_during_an_s3_outage_are_in_the_bucket_after_it(
    topology: Topology, shipped: ShippedLog, s3_outage: Load
) -> None:
    """Once S3 is back the replicas upload what they spooled: every prediction
    acknowledged before, during and after the outage is in a segment in the bucket (read
    with pyarrow), exactly once, and in the log Keel reads (its committed segments)."""
    acknowledged = s3_outage.acknowledged
    missing = shipped.missing(acknowledged)
    ids = shipped.frame()["prediction_id"]
    assert len(acknowledged) >= 300
    assert len(missing) == 0, f"{len(missing)} of {len(acknowledged)} acknowledged not shipped"
    assert not ids.duplicated().any(), ids[ids.duplicated()].tolist()[:5]
    assert topology.missing_from_log(acknowledged) == set()


@dataclass
class Skew:
    """A replica run 5 minutes ahead under load: the load, and when its phase ran."""

    load: Load
    replica: Replica
    started: float  # UNIX time (the test's clock) when the skewed phase began
    ended: float


def _restart(replica: Replica, balancer: Balancer, env: dict[str, str]) -> None:
    """SIGTERM, start again with ``env``, and wait until the balancer sends to it."""
    assert replica.stop() == 0, replica.output()
    replica.env = env
    replica.start()
    assert replica.wait_ready(), replica.output()
    deadline = time.monotonic() + 30
    while not balancer.healthy[replica.name] and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture(scope="module")
def skew(topology: Topology, s3_outage: Load) -> Skew:
    """Restart one replica with its clock 5 minutes ahead (libfaketime) and run load
    through all three; its next start (the rolling restart's) has the true clock."""
    replica = topology.replicas[1]
    true_clock = replica.env
    with traffic(topology) as (balancer, load):
        load.phase = "restarting"
        _restart(replica, balancer, {**true_clock, **skewed_clock()})
        load.phase = "skewed"
        started = time.time()
        load.wait_for(90)
        ended = time.time()
        load.phase = "after"
    replica.env = true_clock
    return Skew(load, replica, started, ended)


def test_a_replica_5_minutes_ahead_ships_every_prediction_once(
    shipped: ShippedLog, skew: Skew
) -> None:
    """Its rows carry its own clock (5 minutes ahead of the others', as logged), and
    every prediction acknowledged around it, by it or the others, is in the bucket's
    segments exactly once: segment names come from the replica's id, not its clock."""
    load = skew.load
    on_skewed = {i for i, r in load.tally("skewed").acknowledged.items() if r == skew.replica.name}
    assert shipped.missing(load.acknowledged) == set()
    frame = shipped.frame()
    times = pd.to_datetime(frame["time"], utc=True) - pd.Timestamp(0, tz="UTC")
    stamps = pd.Series(times.dt.total_seconds().to_numpy(), index=frame["prediction_id"])
    ahead = stamps[list(on_skewed)] - skew.started
    others = stamps[list(load.tally("skewed").acknowledged.keys() - on_skewed)] - skew.started
    failed = {phase: t.failures for phase, t in load.tallies.items() if t.failures}
    assert len(on_skewed) >= 20 and failed == {}, load.tallies
    assert ahead.between(290, 300 + skew.ended - skew.started + 5).all(), ahead.describe()
    assert others.between(-5, skew.ended - skew.started + 5).all(), others.describe()
    assert not frame["prediction_id"].duplicated().any()


def test_a_worker_on_another_machine_counts_every_replicas_rows(
    topology: Topology, shipped: ShippedLog, s3_outage: Load, skew: Skew
) -> None:
    """`keel worker --once` in a folder of its own (no spool of the replicas; only the
    stores and the bucket shared) monitors a window holding every row the replicas
    logged (the skewed replica's, stamped 5 minutes ahead, included): its row count
    equals the rows in the bucket's segments, counted with pandas, and the segments it
    read are the bucket's, fetched into its own cache."""
    assert shipped.missing(s3_outage.acknowledged | skew.load.acknowledged) == set()
    time.sleep(3)  # the replicas seal and upload the last probes' rows (log_seal_every 2s)
    done = topology.keel("worker", "--once", "--json", root=topology.worker_root)
    frame = shipped.frame()
    cycle = json.loads(done.stdout)
    drift = cycle["drift"]
    counted = drift["rows"] + sum(drift["other_versions"].values())
    cache = topology.worker_root / ".keel" / "predictions" / "cache"
    assert done.returncode == 0, done.stderr
    assert counted == len(frame) == frame["prediction_id"].nunique(), (counted, len(frame))
    assert len(list(cache.glob("*.parquet"))) == shipped.segments
    assert not list((topology.worker_root / ".keel" / "predictions").glob("spool/*.log"))


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
    replicas commit them: no prediction acknowledged during the cut is missing."""
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
