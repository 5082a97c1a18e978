"""``keel features``: list, materialize, look up, build training sets, check skew."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keel.cli._common import JsonOpt, ProjectOpt, cancellable, emit, open_project, progress

if TYPE_CHECKING:
    from rich.console import Console

    from keel.features import FeatureStore

app = typer.Typer(
    help="The feature store: one definition for training and serving.", no_args_is_help=True
)

At = Annotated[
    datetime | None,
    typer.Option(
        "--at", formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"], help="Point in time (UTC); default now."
    ),
]


def _store(project: Path | None) -> FeatureStore:
    from keel.features import FeatureStore

    return FeatureStore.open(open_project(project))


@app.command("list")
def list_features(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """List feature views and request-time transforms with their definition hashes."""
    store = _store(project)
    views = [v.spec() | {"hash": v.definition_hash[:12]} for v in store.features.views.values()]
    transforms = [
        {"name": t.name, "inputs": list(t.inputs), "hash": t.definition_hash[:12]}
        for t in store.features.transforms.values()
    ]
    data = {"views": views, "transforms": transforms, "hash": store.features.definition_hash}

    def human(out: Console) -> None:
        for view in views:
            names = [f["name"] if isinstance(f, dict) else f for f in view["features"]]
            out.print(
                f"[bold]{view['name']}[/] ({view['source']} by {_key(view['entity'])}, "
                f"hash {view['hash']}): {', '.join(names)}"
            )
        for transform in transforms:
            inputs = ", ".join(transform["inputs"])
            out.print(f"[bold]{transform['name']}[/] (request-time, from {inputs})")

    emit(as_json, data, human)


def _key(entity: str | list[str]) -> str:
    return entity if isinstance(entity, str) else " + ".join(entity)


@app.command("materialize")
def materialize(project: ProjectOpt = None, at: At = None, as_json: JsonOpt = False) -> None:
    """Write each entity's newest feature values to the online store (incremental)."""
    store = _store(project)
    with (
        progress("materializing features", quiet=as_json) as say,
        _on_cluster(store, say, "nothing materialized"),
    ):
        results = store.materialize(at)
    data = [
        {"view": r.view, "until": r.until.isoformat(), "written": r.written, "rows": r.rows}
        for r in results
    ]

    def human(out: Console) -> None:
        for item in data:
            written, until = item["written"], item["until"]
            out.print(f"[green]✓[/] {item['view']}: {written} entities written (as of {until})")

    emit(as_json, data, human)


@app.command("get")
def get(
    entity: Annotated[
        list[str],
        typer.Argument(
            help="The entity: an id for every key column (c_000042), or COLUMN=VALUE for each "
            "key column (origin=JFK carrier=AA); an id fills the columns not named."
        ),
    ],
    project: ProjectOpt = None,
    at: At = None,
    as_json: JsonOpt = False,
) -> None:
    """Look up one entity's features online, as the server would."""
    store = _store(project)
    columns = list(dict.fromkeys(k for view in store.features.views.values() for k in view.keys))
    row = _request_row(entity, columns)
    found = store.lookup([row], at)[0]
    data = {
        "entity": " ".join(entity),
        "keys": row,
        "features": found.values,
        "missing": list(found.missing),
        "stale": list(found.stale),
    }

    def human(out: Console) -> None:
        for name, value in found.values.items():
            out.print(f"{name:<24} {value}")
        if found.missing or found.stale:
            out.print(
                f"[yellow]![/] missing: {', '.join(found.missing) or '-'}; "
                f"stale: {', '.join(found.stale) or '-'}"
            )

    emit(as_json, data, human)


def _request_row(parts: list[str], columns: list[str]) -> dict[str, str]:
    """The request row ``keel features get`` looks up: named key columns, the rest the id."""
    from keel.errors import FeatureError

    named = dict(part.split("=", 1) for part in parts if "=" in part)
    bare = [part for part in parts if "=" not in part]
    unknown = sorted(set(named) - set(columns))
    if unknown or len(bare) > 1:
        raise FeatureError(
            f"give one id, or COLUMN=VALUE for the key columns ({', '.join(columns)}); "
            f"got {' '.join(parts)}"
        )
    return {column: bare[0] for column in columns} | named if bare else named


@app.command("build-training-set")
def build_training_set(
    labels: Annotated[Path, typer.Option("--labels", help="CSV or Parquet of label events.")],
    out: Annotated[
        Path, typer.Option("--out", help="Where to write the training set (.csv or .parquet).")
    ],
    timestamp: Annotated[str, typer.Option(help="The labels' event-time column.")] = "timestamp",
    entity: Annotated[
        str | None,
        typer.Option(
            help="The labels' key column, when it is named differently from the views' "
            "one key column (default: each view's own key columns)."
        ),
    ] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Attach point-in-time correct features to label events; no label row is dropped."""
    from keel.features.io import read_table, write_table

    store = _store(project)
    frame = read_table(labels)
    if entity is not None:
        frame = _rename_key(store, frame, entity)
    with (
        progress(f"joining features to {len(frame)} labels", quiet=as_json) as say,
        _on_cluster(store, say, "no training set written"),
    ):
        result = store.training_set(frame, timestamp)
        write_table(result.frame, out)
    data: dict[str, Any] = {
        "out": str(out),
        "rows": len(result.frame),
        "missing": result.missing,
        "definition_hash": result.definition_hash,
    }

    def human(console: Console) -> None:
        console.print(f"[green]✓[/] wrote {data['rows']} rows to {out}")
        for name, count in result.missing.items():
            if count:
                console.print(f"  {name}: {count} missing")

    emit(as_json, data, human)


@contextmanager
def _on_cluster(store: FeatureStore, say: Callable[[str], None], nothing: str) -> Iterator[None]:
    """On compute.engine dask: the store computes on one engine for the command, showing
    the partitions done; Ctrl-C cancels the cluster's tasks and exits 130 with one line
    (``nothing``: what was not published). A local engine runs as before."""
    compute = store.project.config.compute
    if compute is None or compute.engine == "local":
        yield
        return
    from keel.compute import open_engine
    from keel.features.cluster import Reporting

    with cancellable() as cancelled:
        engine = None
        try:
            say("connecting to the compute engine")
            engine = Reporting(open_engine(compute), lambda *job: say(_done(*job)))
            store.offline.engine = engine
            yield
        except BaseException as error:
            if not (isinstance(error, KeyboardInterrupt) or cancelled.is_set()):
                raise
            sys.stderr.write(f"cancelled: the cluster's tasks were cancelled, {nothing}\n")
            raise typer.Exit(130) from None
        finally:
            store.offline.engine = None
            if engine is not None:
                engine.close()


def _done(what: str, done: int, total: int) -> str:
    return f"{what}: {done}/{total} partitions done"


def _rename_key(store: FeatureStore, frame: Any, entity: str) -> Any:
    """The labels with ``entity`` renamed to the key column every view shares."""
    from keel.errors import FeatureError

    keys = {view.keys for view in store.features.views.values()}
    if len(keys) != 1 or len(next(iter(keys))) != 1:
        raise FeatureError(
            "--entity works only when every view is keyed by the same one column; "
            "name the labels' key columns as the views name them instead"
        )
    if entity not in frame.columns:
        raise FeatureError(f"the labels have no column '{entity}' (--entity)")
    return frame.rename(columns={entity: next(iter(keys))[0]})


@app.command("check")
def check(
    sample: Annotated[int, typer.Option(help="How many entities of each view to compare.")] = 100,
    project: ProjectOpt = None,
    at: At = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare online features with offline recomputation for a sample of each view's entities."""
    store = _store(project)
    with progress("checking online against offline", quiet=as_json):
        report = store.check(store.sample_entities(sample, at), at)
    views = report.by_view()
    data = {
        "at": report.at.isoformat(),
        "checked": report.checked,
        "ok": report.ok,
        "views": views,
        "mismatches": report.mismatches,
    }

    def human(out: Console) -> None:
        mark = "[green]✓[/]" if report.ok else "[red]✗[/]"
        out.print(f"{mark} {report.checked} entities checked, {len(report.mismatches)} mismatches")
        for name, item in views.items():
            features = f" ({', '.join(item['features'])})" if item["features"] else ""
            out.print(
                f"  {name}: {item['checked']} entities, {item['mismatched']} disagree{features}"
            )
        for item in report.mismatches[:20]:
            out.print(
                f"  {item['entity']} {item['feature']}: online {item['online']!r} "
                f"offline {item['offline']!r}"
            )

    emit(as_json, data, human)
    if not report.ok:
        raise typer.Exit(1)
