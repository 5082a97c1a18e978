"""``keel serve`` and ``keel keys create | list | revoke | rotate-ui-secret``.

Only typer and ``keel.cli._common`` are imported here; uvicorn, FastAPI and the serving
package load inside the command bodies, so ``keel --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from keel.cli._common import JsonOpt, ProjectOpt, emit, open_project

if TYPE_CHECKING:
    from rich.console import Console

    from keel.errors import StoreUnavailable

_PROBE_S = 2.0  # how long `keel serve` waits for an unreachable store when it has a snapshot

keys_app = typer.Typer(
    help="API keys for the model server and the dashboard: create, list, revoke; rotate the "
    "dashboard's session secret.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1, max=64)] = 1,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Serve the production model over HTTP until SIGTERM or Ctrl-C.

    With the metadata store unreachable, the server starts from its last snapshot
    (.keel/snapshot), degraded, and reconciles once the store is back. With serving.metrics
    set, /metrics is also served without a key on that port (and nothing else there).
    """
    import os
    import time
    from concurrent.futures import ThreadPoolExecutor

    import keel.store.metadata  # noqa: F401 - imported here, not in the probe's thread
    from keel.serving.orphan import PARENT_ENV, exit_with_parent

    parent = os.environ.pop(PARENT_ENV, None)
    if parent is not None:  # started by a command it must not outlive
        exit_with_parent(int(parent))
    with open_project(project) as opened, ThreadPoolExecutor(1) as pool:
        probe = pool.submit(_probe, opened.store_url)  # while the server's modules load
        from keel.schema import ServingConfig
        from keel.serving.app import check_settings
        from keel.serving.runner import run_server
        from keel.serving.snapshot import STORE_DOWN_ENV, check_start, iso_time, snapshot_folder

        check_settings(opened)
        snapshot = check_start(opened, snapshot_folder(opened), probe.result)
        root = opened.root
        settings = opened.config.serving or ServingConfig()
        keep_alive = settings.keep_alive.total_seconds()
        header_timeout = settings.header_timeout.total_seconds()
        log_format = settings.log_format
        scrape, metrics_url = None, None
        if settings.metrics is not None:  # bound now: a port in use fails before any worker
            from keel.serving.metrics import metrics_port

            scrape = metrics_port(settings.metrics.host, settings.metrics.port)
            metrics_url = f"http://{settings.metrics.host}:{settings.metrics.port}/metrics"
    data = {"url": f"http://{host}:{port}", "workers": workers, "project": str(root)}
    data["metrics"] = metrics_url
    data["snapshot"] = None if snapshot is None else iso_time(snapshot.written_at)
    os.environ.pop(STORE_DOWN_ENV, None)
    if snapshot is not None:
        os.environ[STORE_DOWN_ENV] = str(time.time())  # the workers start from it at once

    def human(out: Console) -> None:
        out.print(f"serving {root.name} on {data['url']}", style="green")
        if data["metrics"]:
            out.print(f"metrics for Prometheus, without a key, at {data['metrics']}")
        if snapshot is not None:
            out.print(
                f"the metadata store is unreachable: serving from the snapshot of "
                f"{data['snapshot']} until it is back",
                style="yellow",
            )

    emit(as_json, data, human)
    run_server(
        root,
        host,
        port,
        workers,
        keep_alive=keep_alive,
        header_timeout=header_timeout,
        log_format=log_format,
        metrics=scrape,
    )


def _probe(url: str) -> StoreUnavailable | None:
    """Why the store at ``url`` does not answer within ``_PROBE_S``, or None if it does."""
    from keel.errors import StoreUnavailable
    from keel.store.metadata import MetadataStore

    try:
        MetadataStore.open(url, migrate_schema=False, timeout_s=_PROBE_S).close()
    except StoreUnavailable as down:
        return down
    return None


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Who or what the key is for.")],
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            help="predict, feedback, viewer (dashboard, read-only) or admin (repeat for several).",
        ),
    ],
    rate_limit: Annotated[
        str | None, typer.Option(help="This key's own limit, e.g. 10/second.")
    ] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key; it is shown once and only its hash is stored."""
    from keel.serving.keys import KeyStore
    from keel.training.provenance import actor

    with open_project(project) as opened:
        key, record = KeyStore(opened.store).create(name, scope, actor(), rate_limit)
    data = {"key": key, **record.public()}

    def human(out: Console) -> None:
        out.print(f"[green]✓[/] key {record.key_id} for {name} ({', '.join(record.scopes)})")
        out.print(key, soft_wrap=True)
        out.print("[dim]store it now: it is not shown again[/]")

    emit(as_json, data, human)


@keys_app.command("list")
def list_keys(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """List keys (never their secrets)."""
    from keel.serving.keys import KeyStore

    with open_project(project) as opened:
        keys = KeyStore(opened.store).list()
    data = [key.public() for key in keys]

    def human(out: Console) -> None:
        if not keys:
            out.print("no keys yet: keel keys create --name NAME --scope predict")
        for key in keys:
            state = "revoked" if key.revoked_at else "active"
            limit = f"  limit {key.rate_limit}" if key.rate_limit else ""
            out.print(f"{key.key_id}  {key.name:<20} {','.join(key.scopes):<24} {state}{limit}")

    emit(as_json, data, human)


@keys_app.command("revoke")
def revoke(
    key: Annotated[str, typer.Argument(help="The key's id or name.")],
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a key: servers refuse it within serving.keys_refresh; its dashboard sessions end."""
    from keel.serving.keys import KeyStore

    with open_project(project) as opened:
        record = KeyStore(opened.store).revoke(key)
    emit(as_json, record.public(), lambda out: out.print(f"[green]✓[/] revoked {record.key_id}"))


@keys_app.command("rotate-ui-secret")
def rotate_ui_secret(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Sign new dashboard sessions with a fresh secret; current sessions last until they expire.

    The previous secret is still accepted for one session lifetime (12 h); a rotation after
    that deletes it. Every replica sharing the metadata store uses the new secret at once.
    """
    import time

    from keel.ui.session import SessionBook

    with open_project(project) as opened:
        rotation = SessionBook(opened.store).rotate(time.time())
    data = {
        "generation": rotation.generation,
        "rotated_at": rotation.rotated_at,
        "previous": rotation.previous,
        "previous_accepted_until": rotation.previous_until,
    }

    def human(out: Console) -> None:
        out.print(
            f"[green]✓[/] dashboard sessions are now signed with secret {rotation.generation}"
        )
        if rotation.previous is not None:
            out.print(f"secret {rotation.previous} is still accepted for 12 h")

    emit(as_json, data, human)
