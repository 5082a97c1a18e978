"""Which model answers a request: a pure, sticky choice.

A request key (the entity id when there is one) hashes to a point in [0, 1); the canary
answers when the point falls below its traffic share. The same key keeps its arm as the
share grows (5% -> 25% -> ...), so a customer who saw the canary keeps seeing it, and the
salt (the canary's version) reshuffles assignment for every new rollout.
"""

from __future__ import annotations

import hashlib
from typing import Literal

__all__ = ["Arm", "bucket", "route"]

Arm = Literal["production", "canary"]
_SCALE = float(1 << 64)


def bucket(key: str, salt: str) -> float:
    """A stable point in [0, 1) for ``key`` under ``salt``."""
    digest = hashlib.blake2b(f"{salt}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def route(key: str, share: float, salt: str) -> Arm:
    """``canary`` for a ``share`` (0..1) of keys, the same keys every time."""
    if share <= 0:
        return "production"
    if share >= 1:
        return "canary"
    return "canary" if bucket(key, salt) < share else "production"
