"""Keel's stores: the metadata database, the artifact store and named leases."""

from keel.store.artifacts import ArtifactStore
from keel.store.leases import Lease, Leases
from keel.store.metadata import MetadataStore

__all__ = ["ArtifactStore", "Lease", "Leases", "MetadataStore"]
