"""The feature store's tables: cached offline snapshots and online materializations."""

from __future__ import annotations

import sqlalchemy as sa

from keel.store.tables import metadata

__all__ = ["feature_materializations", "feature_snapshots"]

feature_snapshots = sa.Table(
    "keel_feature_snapshots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("view", sa.String(200), nullable=False),
    sa.Column("definition_hash", sa.String(64), nullable=False),
    sa.Column("inputs_hash", sa.String(64), nullable=False),
    sa.Column("inputs", sa.JSON, nullable=False),
    sa.Column("until", sa.String(32), nullable=False),
    sa.Column("artifact", sa.String(64), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

feature_materializations = sa.Table(
    "keel_feature_materializations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("view", sa.String(200), nullable=False),
    sa.Column("definition_hash", sa.String(64), nullable=False),
    sa.Column("until", sa.String(32), nullable=False),
    sa.Column("inputs_hash", sa.String(64), nullable=False),
    sa.Column("artifact", sa.String(64), nullable=False),
    sa.Column("written", sa.BigInteger, nullable=False),
    sa.Column("online", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
