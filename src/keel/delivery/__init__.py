"""Delivery: shadow comparison, sticky canary routing, the rollout decision, rollback.

``decide``, ``route`` and ``compare`` are the pure decisions of the delivery path;
``keel.delivery.deployments`` holds the history and the rollback,
``keel.delivery.staging`` stages a version as shadow or canary (``keel deploy V --shadow``
/ ``--canary``) and ``keel.delivery.advance`` is the worker's rollout step; they import
the registry, so they are not imported here. ``last_rollout`` is the read function other
layers use. Names are imported on first use, so reading a rollout does not pay for the
shadow comparison's NumPy, nor a routing decision for SQLAlchemy.
"""

from typing import TYPE_CHECKING

from keel._lazy import lazy_getattr

if TYPE_CHECKING:
    from keel.delivery.reads import last_rollout
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
    "last_rollout",
    "route",
]

_LAZY = {
    "ArmStats": "rollout",
    "CanaryPolicy": "rollout",
    "Decision": "rollout",
    "ShadowCriteria": "shadow",
    "ShadowPair": "shadow",
    "ShadowReport": "shadow",
    "Step": "rollout",
    "bucket": "routing",
    "compare": "shadow",
    "decide": "rollout",
    "last_rollout": "reads",
    "route": "routing",
}

__getattr__ = lazy_getattr(__name__, _LAZY)
