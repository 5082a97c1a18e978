"""When a ``keel.Client`` or ``keel.AsyncClient`` call is sent again, without any I/O.

Both clients send a request, hand what came back (the response, or the transport error)
to ``Attempts.after``, and do what it says: return the response, or sleep the seconds it
names and send again. Giving up on a connection raises ``ServerUnreachable`` from here.
So the decisions (what is retried, how long to wait, when to stop, which error) exist
once, and each client keeps only its own sending and sleeping (httpx sync or async,
``time.sleep`` or ``asyncio.sleep``). The rules themselves are in ``keel.client``'s
docstring.

    >>> attempts = Attempts(RetryPolicy(retries=1, backoff=0.5), "http://h/v1/status")
    >>> attempts.after(httpx.Response(503, request=httpx.Request("GET", "http://h")))
    0.5
    >>> attempts.after(httpx.Response(503, request=httpx.Request("GET", "http://h")))
    <Response [503 Service Unavailable]>
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass

import httpx

from keel.errors import ServerUnreachable

__all__ = ["Attempts", "Outcome", "RetryPolicy", "next_wait", "parse_retry_after"]

Outcome = httpx.Response | httpx.TransportError  # what one try of a request ends with
_COME_BACK_LATER = (429, 503)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a client retries: ``retries`` more attempts after the first; ``backoff`` is the
    first wait when the server names none, doubled each time; a wait longer than
    ``max_wait`` (a ``Retry-After`` of minutes, say) gives up at once."""

    retries: int = 3
    backoff: float = 0.2
    max_wait: float = 30.0


class Attempts:
    """The tries of one call to ``url``: ``after`` takes each try's outcome and says
    what comes next. ``idempotent`` calls may be sent again after a connection broke
    with the request already out."""

    def __init__(self, policy: RetryPolicy, url: str, *, idempotent: bool = False) -> None:
        self.policy = policy
        self.url = url
        self.idempotent = idempotent
        self.attempt = 0  # failed tries so far

    def after(self, outcome: Outcome) -> httpx.Response | float:
        """The response to hand back (an answer, or a 429/503 once the retries are spent),
        or the seconds to wait before the next try; raises ``ServerUnreachable`` when a
        connection failure ends the call."""
        if isinstance(outcome, httpx.TransportError):
            wait = next_wait(
                self.policy, self.attempt, sent=not _not_sent(outcome), idempotent=self.idempotent
            )
            if wait is None:
                raise _unreachable(self.url, outcome, self.attempt + 1) from None
        else:
            if outcome.status_code not in _COME_BACK_LATER:
                return outcome
            after = parse_retry_after(outcome.headers.get("retry-after"))
            wait = next_wait(
                self.policy, self.attempt, status=outcome.status_code, retry_after=after
            )
            if wait is None:
                return outcome
        self.attempt += 1
        return wait


def next_wait(
    policy: RetryPolicy,
    attempt: int,
    *,
    status: int | None = None,
    retry_after: float | None = None,
    sent: bool = True,
    idempotent: bool = False,
) -> float | None:
    """Seconds to wait before trying again after ``attempt`` (0 = the first) failed, or
    None to give up. ``status`` is the error status the server answered (None: no answer;
    ``sent`` then says whether the request may have reached it)."""
    if attempt >= policy.retries:
        return None
    if status is not None and status not in _COME_BACK_LATER:
        return None
    if status is None and sent and not idempotent:
        return None
    wait = retry_after if retry_after is not None else policy.backoff * 2**attempt
    return wait if wait <= policy.max_wait else None


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date (None when absent or unreadable)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _not_sent(error: httpx.TransportError) -> bool:
    """The request never left: retrying cannot repeat anything the server did."""
    return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def _unreachable(url: str, error: httpx.TransportError, attempts: int) -> ServerUnreachable:
    if isinstance(error, httpx.TimeoutException):
        what = "no answer in time"
    elif isinstance(error, httpx.ConnectError):
        what = "the connection was refused or failed"
    else:
        what = "the connection broke"
    tries = "once" if attempts == 1 else f"{attempts} times"
    return ServerUnreachable(
        f"{url}: {what} (tried {tries}); check that keel serve runs there and is reachable"
    )
