"""The model registry's tables: versions, their full run records, status history, gates.

``keel_model_versions`` is kept narrow (what ``keel status`` and ``keel registry list``
read); the large JSON run record sits in ``keel_model_records``. Times are UNIX seconds.
"""

from __future__ import annotations

import sqlalchemy as sa

from keel.store.tables import metadata

__all__ = ["gate_decisions", "model_events", "model_records", "model_versions"]

model_versions = sa.Table(
    "keel_model_versions",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("status_at", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("artifact", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("config_hash", sa.String(64), nullable=False),
    sa.Column("data_ref", sa.String(500), nullable=False),
    sa.Column("data_rows", sa.BigInteger, nullable=False),
    sa.Column("data_start", sa.String(40)),
    sa.Column("data_end", sa.String(40)),
    sa.Column("metrics", sa.Text, nullable=False),
    sa.Column("duration_s", sa.Float, nullable=False),
    sa.Column("gate_passed", sa.Boolean),
    sa.Index("ix_keel_model_versions_status", "status", "version"),
)

model_records = sa.Table(
    "keel_model_records",
    metadata,
    sa.Column(
        "version",
        sa.Integer,
        sa.ForeignKey("keel_model_versions.version", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("record", sa.Text, nullable=False),
)

model_events = sa.Table(
    "keel_model_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("version", sa.Integer, sa.ForeignKey("keel_model_versions.version"), nullable=False),
    sa.Column("from_status", sa.String(20)),
    sa.Column("to_status", sa.String(20), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("forced", sa.Boolean, nullable=False, default=False),
    sa.Index("ix_keel_model_events_version", "version", "id"),
    sa.Index("ix_keel_model_events_to_status", "to_status", "id"),
)

gate_decisions = sa.Table(
    "keel_gate_decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("version", sa.Integer, sa.ForeignKey("keel_model_versions.version"), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("decision", sa.Text, nullable=False),
    sa.Index("ix_keel_gate_decisions_version", "version", "id"),
)
