"""Delivery: shadow comparison, sticky canary routing, the rollout decision, rollback.

``decide``, ``route`` and ``compare`` are the pure decisions of the delivery path;
``keel.delivery.deployments`` holds the history and the rollback (it imports the
registry, so it is not imported here).
"""

from keel.delivery.rollout import ArmStats, CanaryPolicy, Decision, Step, decide
from keel.delivery.routing import bucket, route
from keel.delivery.shadow import ShadowCriteria, ShadowPair, ShadowReport, compare

__all__ = [
    "ArmStats",
    "CanaryPolicy",
    "Decision",
    "ShadowCriteria",
    "ShadowPair",
    "ShadowReport",
    "Step",
    "bucket",
    "compare",
    "decide",
    "route",
]
