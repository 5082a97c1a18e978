"""The client's pure decisions: when to retry, how long to wait, how to batch."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from keel.client import RetryPolicy, batched, next_wait, parse_retry_after
from keel.errors import ServerUnreachable
from keel.retrying import Attempts

POLICY = RetryPolicy(retries=3, backoff=0.2, max_wait=30.0)


@pytest.mark.parametrize(
    ("attempt", "kwargs", "wait"),
    [
        (0, {"status": 429, "retry_after": 2.0}, 2.0),  # the server's word wins
        (1, {"status": 503}, 0.4),  # no Retry-After: 0.2 doubled per attempt
        (0, {"status": 429, "retry_after": 31.0}, None),  # longer than max_wait
        (3, {"status": 429, "retry_after": 1.0}, None),  # the retries are spent
        (0, {"status": 500}, None),  # not a "come back later" status
        (0, {"status": 422}, None),
        (0, {"sent": False}, 0.2),  # the connection never opened: safe for any call
        (0, {"sent": True, "idempotent": False}, None),  # predict may have reached it
        (2, {"sent": True, "idempotent": True}, 0.8),  # status / feedback are repeatable
    ],
)
def test_next_wait(attempt: int, kwargs: dict[str, object], wait: float | None) -> None:
    """Each failure gets the wait the module's docstring promises, or none."""
    assert next_wait(POLICY, attempt, **kwargs) == wait  # type: ignore[arg-type]


def test_retry_after_reads_seconds_and_dates() -> None:
    """Retry-After as seconds or as an HTTP date; garbage is no hint."""
    when = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert parse_retry_after("7") == 7.0 and parse_retry_after("soon") is None
    assert 55 <= (parse_retry_after(when) or 0) <= 60


def test_batched_keeps_order_and_caps_size() -> None:
    """25 rows in batches of 10: 10, 10, 5, concatenating back to the rows."""
    parts = list(batched(list(range(25)), 10))
    assert [len(p) for p in parts] == [10, 10, 5]
    assert [x for p in parts for x in p] == list(range(25))


def test_attempts_wait_then_give_up_naming_the_tries() -> None:
    """Refused connections: the backoff doubles (0.2, 0.4, 0.8), then the fourth refusal
    is ServerUnreachable saying it tried 4 times."""
    attempts = Attempts(POLICY, "http://127.0.0.1:9/v1/predict")
    refused = httpx.ConnectError("refused")
    assert [attempts.after(refused) for _ in range(3)] == [0.2, 0.4, 0.8]
    with pytest.raises(ServerUnreachable, match="refused or failed \\(tried 4 times\\)"):
        attempts.after(refused)


def test_attempts_hand_back_an_answer_at_once() -> None:
    """A status that is not 429 or 503 is the call's answer, with no wait."""
    response = httpx.Response(500, request=httpx.Request("POST", "http://h/v1/predict"))
    assert Attempts(POLICY, "http://h/v1/predict").after(response) is response
