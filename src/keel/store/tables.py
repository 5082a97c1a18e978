"""The metadata store's tables, in SQLAlchemy Core.

Every layer defines its tables against this one ``metadata`` and adds an Alembic
migration under ``keel/store/migrations/versions`` on its own branch (see CONTRIBUTING).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["leases", "metadata"]

metadata = sa.MetaData()

leases = sa.Table(
    "keel_leases",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("token", sa.BigInteger, nullable=False),
    sa.Column("acquired_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)
