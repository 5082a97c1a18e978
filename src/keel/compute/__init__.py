"""Where heavy data work runs: this process, or a Dask cluster (``compute:`` in keel.yaml).

The seam is one method, ``Engine.map(fn, shared, items)``: a function over partitions,
results as they finish. ``open_engine`` picks the engine from the project's settings;
``cluster_engine`` opens it for a block only when it is a cluster.
"""

from keel.compute.engine import (
    ADDRESS_ENV,
    Engine,
    cluster_engine,
    open_engine,
    scheduler_address,
)

__all__ = ["ADDRESS_ENV", "Engine", "cluster_engine", "open_engine", "scheduler_address"]
