"""The data layer's tables: published data versions and every ingestion run."""

from __future__ import annotations

import sqlalchemy as sa

from keel.store.tables import metadata

__all__ = ["data_runs", "data_versions"]

data_versions = sa.Table(
    "keel_data_versions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(200), nullable=False, index=True),
    sa.Column("artifact", sa.String(64), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("schema", sa.JSON, nullable=False),
    sa.Column("profile", sa.JSON, nullable=False),
    sa.Column("watermark", sa.String(64), nullable=True),
    sa.Column("time_min", sa.String(64), nullable=True),
    sa.Column("time_max", sa.String(64), nullable=True),
    sa.Column("lineage", sa.JSON, nullable=False),
    sa.Column("run_id", sa.String(32), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("retired_at", sa.Float, nullable=True),
    sa.Column("retired_reason", sa.Text, nullable=True),
)

data_runs = sa.Table(
    "keel_data_runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("source", sa.String(200), nullable=False, index=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=False),
    sa.Column("version_id", sa.String(64), nullable=True),
    sa.Column("rows", sa.BigInteger, nullable=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("report", sa.JSON, nullable=True),
    sa.Column("report_artifact", sa.String(64), nullable=True),
    sa.Column("quarantine_artifact", sa.String(64), nullable=True),
    sa.Column("lineage", sa.JSON, nullable=True),
)
