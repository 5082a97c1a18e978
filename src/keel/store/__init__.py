"""Keel's stores: the metadata database, the artifact store and named leases.

Names are imported on first use: the database stack (SQLAlchemy, Alembic) is only paid
for by commands that open the metadata store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel._lazy import lazy_getattr

if TYPE_CHECKING:
    from keel.store.artifacts import ArtifactStore
    from keel.store.leases import Lease, Leases
    from keel.store.metadata import MetadataStore
    from keel.store.reads import reading

__all__ = ["ArtifactStore", "Lease", "Leases", "MetadataStore", "reading"]

_HOMES = {
    "ArtifactStore": "keel.store.artifacts",
    "Lease": "keel.store.leases",
    "Leases": "keel.store.leases",
    "MetadataStore": "keel.store.metadata",
    "reading": "keel.store.reads",
}


__getattr__ = lazy_getattr(__name__, _HOMES)
