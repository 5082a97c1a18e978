"""The layer map of CONTRIBUTING.md, checked on the real import graph.

The graph is grimp's (it parses every ``import`` in ``src/keel``): imports at module
level, inside functions and under ``TYPE_CHECKING`` all count, so a circle dodged by an
import inside a function is still a circle.
"""

from __future__ import annotations

import grimp
import pytest

# Lowest first: a layer imports only layers before it (CONTRIBUTING.md, "The layer map").
LAYERS = ("store", "data", "features", "training", "monitoring", "delivery", "serving", "ui", "cli")

# Imports against the order, each with why it stands. Keep this list short.
UPWARD_EXCEPTIONS = {
    ("keel.training.status", "keel.monitoring.reads"): (
        "`keel status` summarises every layer: it shows open alerts through monitoring's "
        "public read function"
    ),
    ("keel.training.status", "keel.delivery.reads"): (
        "`keel status` summarises every layer: it shows the last rollout through delivery's "
        "public read function"
    ),
    ("keel.monitoring.feedback", "keel.serving.feedback"): (
        "ground truth arrives at the server and lives in serving's table; monitoring reads "
        "it through serving's public feedback functions"
    ),
    ("keel.monitoring.log", "keel.serving.outages"): (
        "the prediction log reports upload outages with the server's outage logger"
    ),
    ("keel.monitoring.shipping", "keel.serving.outages"): (
        "a replica's spool shipper reports upload outages with the server's outage logger"
    ),
    ("keel.monitoring.gauges", "keel.delivery.metrics"): (
        "the worker's Grafana gauges show delivery measures beside monitoring's"
    ),
    ("keel.monitoring.gauges", "keel.delivery.staging"): (
        "the worker's Grafana gauges show the running rollouts' shares"
    ),
    ("keel.serving.app", "keel.ui"): "the model server mounts the dashboard under /ui",
}

# Modules that still read another layer's tables directly: keel/ui/session.py keeps the
# dashboard's sessions in tables that serving/tables.py defines (the server mounts the
# dashboard and its migration branch holds them). Remove the line when they move.
TABLE_ACCESS_ALLOWLIST = frozenset({"keel.ui.session"})


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    """Keel's import graph, TYPE_CHECKING imports included."""
    return grimp.build_graph("keel", cache_dir=None, exclude_type_checking_imports=False)


def _layer(module: str) -> str | None:
    """The layer package a module belongs to (``keel.serving.app`` -> ``serving``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _edges(graph: grimp.ImportGraph) -> list[tuple[str, str]]:
    return [
        (importer, imported)
        for importer in sorted(graph.modules)
        for imported in sorted(graph.find_modules_directly_imported_by(importer))
    ]


def _where(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    details = graph.get_import_details(importer=importer, imported=imported)
    lines = ", ".join(str(detail["line_number"]) for detail in details)
    return f"{importer} -> {imported} (line {lines})"


def test_no_import_cycles(graph: grimp.ImportGraph) -> None:
    """No keel module imports, through any chain, a module that imports it."""
    cycles: dict[frozenset[str], str] = {}
    for importer, imported in _edges(graph):
        chain = graph.find_shortest_chain(importer=imported, imported=importer)
        if chain is not None:
            cycles.setdefault(frozenset(chain), " -> ".join((importer, *chain)))
    assert not cycles, "import cycles:\n" + "\n".join(sorted(cycles.values()))


def test_no_module_reads_another_layers_tables(graph: grimp.ImportGraph) -> None:
    """Only a layer's own modules import its ``tables`` (and every layer defines its tables
    on ``keel.store.tables``); other layers read through its public functions."""
    found = []
    for importer, imported in _edges(graph):
        owner = _layer(imported)
        if not imported.endswith(".tables") or owner in (None, "store"):
            continue
        if _layer(importer) != owner and importer not in TABLE_ACCESS_ALLOWLIST:
            found.append(_where(graph, importer, imported))
    assert not found, "modules reading another layer's tables:\n" + "\n".join(found)


def test_no_module_imports_another_layers_private_modules(graph: grimp.ImportGraph) -> None:
    """A module whose name starts with ``_`` (``keel.audit._paths``) is imported only from
    inside its own package."""
    found = []
    for importer, imported in _edges(graph):
        name = imported.rsplit(".", 1)[-1]
        if name.startswith("_") and not name.startswith("__") and imported.count(".") > 1:
            package = imported.rsplit(".", 1)[0]
            if not importer.startswith(package + ".") and importer != package:
                found.append(_where(graph, importer, imported))
    assert not found, "imports of another package's private modules:\n" + "\n".join(found)


def test_imports_follow_the_layer_order(graph: grimp.ImportGraph) -> None:
    """A layer imports only the layers below it, except the listed, explained imports."""
    rank = {layer: index for index, layer in enumerate(LAYERS)}
    found = []
    for importer, imported in _edges(graph):
        low, high = rank.get(_layer(importer) or ""), rank.get(_layer(imported) or "")
        if low is None or high is None or high <= low:
            continue
        if (importer, imported) not in UPWARD_EXCEPTIONS:
            found.append(_where(graph, importer, imported))
    assert not found, "imports of a higher layer:\n" + "\n".join(found)


def test_every_upward_exception_is_still_needed(graph: grimp.ImportGraph) -> None:
    """An exception to the layer order that no import uses any more is removed from the list."""
    unused = [
        (importer, imported)
        for importer, imported in UPWARD_EXCEPTIONS
        if imported not in graph.modules
        or not graph.direct_import_exists(importer=importer, imported=imported)
    ]
    assert not unused, f"remove these from UPWARD_EXCEPTIONS: {unused}"
