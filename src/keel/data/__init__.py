"""The data layer: sources, idempotent versioned ingestion, profiles and batch validation.

    from keel.data import ingest
    runs = ingest(Project.open("."))          # read -> profile -> validate -> publish

Every check in a report has a stable name: ``<column>.<kind>`` for column checks
(``age.range``, ``customer_id.unique``, ``income.missing``, ``age.type``, ``plan.allowed``,
``id.regex``, ``x.not_null``, ``x.max_null_rate``, ``t.not_future``, ``t.freshness``, and
``customer_id.unique_history`` for a source's key against its live published versions; a
composite key is named by its columns joined with ``+``: ``carrier+flight+date.unique``),
``rule:<name>``, ``reference:<column>-><source>.<column>``, ``ordered:<by>[ within <e>]``,
``schema:extra_columns`` and ``stats:...`` for comparisons with the reference version.

Heavy libraries (DuckDB, pandas, SQLAlchemy) load on first use, not on import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel._lazy import lazy_getattr

if TYPE_CHECKING:
    from keel.data.access import read_version
    from keel.data.batch import Batch
    from keel.data.catalog import Catalog
    from keel.data.demo import data_story
    from keel.data.infer import infer_checks
    from keel.data.ingestion import Ingestion, ingest
    from keel.data.model import ColumnProfile, DataVersion, Finding, Profile, Report, Run
    from keel.data.profiling import profile
    from keel.data.validation import Context, validate

__all__ = [
    "Batch",
    "Catalog",
    "ColumnProfile",
    "Context",
    "DataVersion",
    "Finding",
    "Ingestion",
    "Profile",
    "Report",
    "Run",
    "data_story",
    "infer_checks",
    "ingest",
    "profile",
    "read_version",
    "validate",
]

_HOMES = {
    "Batch": "keel.data.batch",
    "Catalog": "keel.data.catalog",
    "ColumnProfile": "keel.data.model",
    "Context": "keel.data.validation",
    "DataVersion": "keel.data.model",
    "Finding": "keel.data.model",
    "Ingestion": "keel.data.ingestion",
    "Profile": "keel.data.model",
    "Report": "keel.data.model",
    "Run": "keel.data.model",
    "data_story": "keel.data.demo",
    "infer_checks": "keel.data.infer",
    "ingest": "keel.data.ingestion",
    "profile": "keel.data.profiling",
    "read_version": "keel.data.access",
    "validate": "keel.data.validation",
}


__getattr__ = lazy_getattr(__name__, _HOMES)
