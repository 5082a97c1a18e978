"""Delivery: shadow comparison, sticky canary routing and the rollout decision.

These are the pure decisions of the delivery path; the worker and the server call them
with what they have observed.
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
