"""Delivery: shadow comparison, sticky canary routing, the rollout decision, rollback.

``decide``, ``route`` and ``compare`` are the pure decisions of the delivery path;
``keel.delivery.deployments`` holds the history and the rollback,
``keel.delivery.staging`` stages a version as shadow or canary (``keel deploy V --shadow``
/ ``--canary``) and ``keel.delivery.advance`` is the worker's rollout step; they import
the registry, so they are not imported here.
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
