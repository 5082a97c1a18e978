"""A ``distributed.client.security-loader`` for tests: notes each address it is asked
about in the file named by ``KEEL_TEST_SECURITY_LOG`` and returns no credentials."""

from __future__ import annotations

import os
from typing import Any


def load(info: dict[str, Any]) -> None:
    with open(os.environ["KEEL_TEST_SECURITY_LOG"], "a") as log:
        log.write(f"{info['address']}\n")
