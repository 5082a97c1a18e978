"""Sticky canary routing."""

from __future__ import annotations

import pytest

from keel.delivery import bucket, route


def test_the_same_key_always_takes_the_same_arm() -> None:
    """Assignment depends only on the key, the share and the salt."""
    assert all(route(f"c{i}", 0.3, "v7") == route(f"c{i}", 0.3, "v7") for i in range(500))


@pytest.mark.parametrize("share", [0.05, 0.25, 0.5])
def test_the_share_of_keys_on_the_canary_matches(share: float) -> None:
    """About ``share`` of 20,000 keys go to the canary."""
    hits = sum(route(f"c{i}", share, "v7") == "canary" for i in range(20_000))
    assert abs(hits / 20_000 - share) < 0.015


def test_growing_the_share_keeps_earlier_canary_keys() -> None:
    """A key on the canary at 5% is still on it at 25% and 50%."""
    early = {f"c{i}" for i in range(5000) if route(f"c{i}", 0.05, "v7") == "canary"}
    assert early and all(route(key, 0.25, "v7") == "canary" for key in early)


def test_a_new_salt_reshuffles() -> None:
    """The next rollout does not always pick the same customers."""
    first = {f"c{i}" for i in range(5000) if route(f"c{i}", 0.1, "v7") == "canary"}
    second = {f"c{i}" for i in range(5000) if route(f"c{i}", 0.1, "v8") == "canary"}
    assert len(first & second) < 0.3 * len(first)


@pytest.mark.parametrize(("share", "arm"), [(0.0, "production"), (1.0, "canary")])
def test_edges(share: float, arm: str) -> None:
    """0% and 100% route every key one way."""
    assert {route(f"c{i}", share, "s") for i in range(100)} == {arm}


def test_bucket_is_in_the_unit_interval() -> None:
    """Buckets are points in [0, 1)."""
    assert all(0 <= bucket(str(i), "s") < 1 for i in range(1000))
