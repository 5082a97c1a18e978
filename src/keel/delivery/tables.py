"""The delivery layer's table: the state of each shadow or canary rollout.

One row per version that was deployed as a shadow or a canary. ``share`` is the canary's
traffic percentage, ``step_index`` and ``step_started_at`` say where in the configured
steps it is, and ``state`` is ``running``, ``promoted`` or ``rolled_back``. The worker
resumes a rollout from this row. Times are UNIX seconds.
"""

from __future__ import annotations

import sqlalchemy as sa

from keel.store.tables import metadata

__all__ = ["rollouts"]

rollouts = sa.Table(
    "keel_rollouts",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("share", sa.Float, nullable=False),
    sa.Column("step_index", sa.Integer, nullable=False),
    sa.Column("step_started_at", sa.Float, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
