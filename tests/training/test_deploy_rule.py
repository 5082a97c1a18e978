"""The deploy rule: a passing gate, or a forced deploy with a reason."""

from __future__ import annotations

import pytest

from keel.training.gating import deploy_allowed


@pytest.mark.parametrize(
    ("gate_passed", "force", "reason", "allowed"),
    [
        (True, False, None, True),
        (None, False, None, False),
        (False, False, None, False),
        (False, True, None, False),
        (False, True, "  ", False),
        (False, True, "hotfix for incident 12", True),
        (None, True, "pilot model, gate not configured", True),
    ],
)
def test_deploy_allowed(
    gate_passed: bool | None, force: bool, reason: str | None, allowed: bool
) -> None:
    """Refused unless gated and passed, or forced with a non-empty reason."""
    assert (deploy_allowed(gate_passed, force, reason) is None) is allowed
