"""The short-lived memo in front of the prediction log reads."""

from __future__ import annotations


def test_memo_reuses_a_value_until_it_is_stale() -> None:
    """A value is computed once per ttl, then again once it is older."""
    from keel.ui.memo import Memo

    now = [0.0]
    calls: list[int] = []
    memo = Memo(ttl=30, clock=lambda: now[0])

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert [memo.get("k", compute), memo.get("k", compute)] == [1, 1]
    now[0] = 31.0
    assert memo.get("k", compute) == 2
