"""The replica's snapshot: written when its view of the store changes, started from when the
store is unreachable, refused with one sentence when it cannot stand in for the store.

The outage tests run the real ``keel serve`` on a PostgreSQL store reached through a TCP
relay on loopback that the test cuts and restores.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from keel.project import STORE_ENV, Project
from keel.serving import create_app
from keel.serving.snapshot import STORE_DOWN_ENV, decode, refusal
from tests.helpers import Relay, free_port, keel
from tests.serving.helpers import (
    GOOD,
    auth,
    client,
    create_key,
    register_model,
    write_config,
)
from tests.serving.test_process import REPO
from tests.serving.test_registry_source import versions_served

SNAPSHOT = Path(".keel") / "snapshot" / "snapshot.json"


def _snapshot(root: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((root / SNAPSHOT).read_text())
    return document


def _cached(root: Path, digest: str) -> bytes:
    """The model bytes the snapshot keeps for ``digest``."""
    return (root / ".keel" / "snapshot" / "artifacts" / "sha256" / digest[:2] / digest).read_bytes()


async def _serve_once(project: Project) -> None:
    """Start and stop a server in process, which leaves its snapshot behind."""
    async with client(create_app(project)):
        pass


# -- the pure part ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "why"),
    [
        ([], "not a JSON object"),
        ({"format": 99}, "format 99 is not 1"),
        ({"format": 1, "project": "churn"}, "KeyError"),
    ],
)
def test_a_malformed_document_is_refused_with_what_is_wrong(document: Any, why: str) -> None:
    """A document that is not a snapshot raises ValueError naming the problem."""
    with pytest.raises(ValueError, match=why):
        decode(document)


def test_a_snapshot_of_another_project_or_store_is_refused_by_name() -> None:
    """The refusal names the project (or store) the snapshot was written for."""
    from keel.serving.snapshot import Snapshot, View

    snapshot = Snapshot("fraud", "postgresql://db/a", 0.0, View())
    assert refusal(snapshot, "churn", "postgresql://db/a") == (
        "it was written for project 'fraud', not 'churn'"
    )
    assert refusal(snapshot, "fraud", "postgresql://db/b") == (
        "it mirrors the store postgresql://db/a, not postgresql://db/b"
    )
    assert refusal(snapshot, "fraud", "postgresql://db/a") is None


# -- writing it ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_server_writes_its_view_with_the_model_bytes_and_only_key_hashes(
    project: Project, tmp_path: Path
) -> None:
    """After start, .keel/snapshot names the production version, keeps its artifact's
    bytes (which hash to its digest), and holds the key's sha256, never the key; the file
    is readable by its owner only."""
    version = register_model(project, tmp_path)
    key = create_key(project)
    async with client(create_app(project)):
        document = _snapshot(project.root)
    mode = stat.S_IMODE((project.root / SNAPSHOT).stat().st_mode)
    secret = key.split("_", 2)[2]
    assert document["project"] == "churn" and document["production"]["label"] == "churn@1"
    assert document["production"]["artifact"] == version.artifact
    assert hashlib.sha256(_cached(project.root, version.artifact)).hexdigest() == version.artifact
    assert [k["secret_sha256"] for k in document["keys"]] == [
        hashlib.sha256(secret.encode()).hexdigest()
    ]
    assert key not in (project.root / SNAPSHOT).read_text() and mode == 0o600


@pytest.mark.anyio
async def test_a_deploy_rewrites_the_snapshot(project_dir: Path, tmp_path: Path) -> None:
    """Once a new production version is served, the snapshot names it (within seconds)."""
    write_config(project_dir, "reload_interval: 100ms\nrate_limit: 1000/second")
    with Project.open(project_dir) as project:
        register_model(project, tmp_path, seed=0)
        async with client(create_app(project)):
            before = _snapshot(project_dir)["production"]["label"]
            register_model(project, tmp_path, seed=1)
            deadline = time.monotonic() + 30
            while (after := _snapshot(project_dir)["production"]["label"]) != "churn@2":
                if time.monotonic() > deadline:
                    break
                await anyio.sleep(0.05)
    assert (before, after) == ("churn@1", "churn@2")


@pytest.mark.anyio
async def test_a_corrupt_snapshot_is_ignored_and_rewritten_while_the_store_is_up(
    project: Project, tmp_path: Path
) -> None:
    """A torn snapshot file does not stop a server whose store answers: it serves from the
    store and writes a whole snapshot over the torn one."""
    register_model(project, tmp_path)
    key = create_key(project)
    async with client(create_app(project)):
        pass
    whole = (project.root / SNAPSHOT).read_bytes()
    (project.root / SNAPSHOT).write_bytes(whole[: len(whole) // 2])
    async with client(create_app(project)) as c:
        served = await versions_served(c, key, 1)
    assert served == ["churn@1"]
    assert _snapshot(project.root)["production"]["label"] == "churn@1"


@pytest.mark.anyio
async def test_a_corrupt_cached_model_is_fetched_again_while_the_store_is_up(
    project: Project, tmp_path: Path
) -> None:
    """Cached model bytes with one byte flipped are not loaded: the server takes the
    artifact store's bytes, serves them, and the cache holds the right bytes again."""
    version = register_model(project, tmp_path)
    key = create_key(project)
    await _serve_once(project)
    cached = project.root / ".keel" / "snapshot" / "artifacts" / "sha256"
    path = cached / version.artifact[:2] / version.artifact
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    async with client(create_app(project)) as c:
        served = await versions_served(c, key, 1)
    assert served == ["churn@1"]
    assert hashlib.sha256(_cached(project.root, version.artifact)).hexdigest() == version.artifact


@pytest.mark.anyio
async def test_failed_store_reads_are_logged_once_then_summarised(
    project: Project, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Ten failed looks at a broken store log one ERROR line, and /readyz says degraded."""
    register_model(project, tmp_path)
    app = create_app(project)
    async with client(app) as c:
        project.store.engine.dispose()
        database = project.state_dir / "keel.db"
        database.rename(database.with_suffix(".gone"))
        database.write_bytes(b"this is not a database file at all" * 200)
        with caplog.at_level(logging.ERROR, logger="keel.serving"):
            for _ in range(10):
                await app.lifecycle.check_source()
        ready = (await c.get("/readyz")).json()
    failing = [r for r in caplog.records if "metadata store reads are failing" in r.message]
    assert len(failing) == 1
    assert ready["degraded"].startswith("store unreachable since ")


@pytest.mark.anyio
async def test_a_start_from_the_snapshot_restores_the_canary_and_shadow_then_reconciles(
    project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server told the store is down (as `keel serve` tells its workers) serves version 1
    with version 2 as a 40 % canary and version 3 as the shadow, all from the snapshot,
    degraded; its first look at the store (which answers) clears the flag."""
    from tests.delivery.helpers import stage_model

    write_config(project_dir, "rate_limit: 1000/second\nreload_interval: 1h\nkeys_refresh: 1h")
    with Project.open(project_dir) as project:
        register_model(project, tmp_path, seed=0)
        stage_model(project, tmp_path, "canary", seed=1, share=40)
        stage_model(project, tmp_path, "shadow", seed=2)
        await _serve_once(project)
    monkeypatch.setenv(STORE_DOWN_ENV, str(time.time()))
    with Project.open(project_dir) as project:
        app = create_app(project)
        async with client(app):
            ready = app.readiness()
            delivery = app.state.delivery
            assert delivery is not None and delivery.canary is not None
            arms = (delivery.canary.version, delivery.staging.share, delivery.shadow)
            shadow = delivery.shadow.served.version if delivery.shadow else None
            await app.lifecycle.check_source()
            after = app.readiness()
    assert (ready["model"], arms[:2], shadow) == ("churn@1", ("churn@2", 0.4), "churn@3")
    assert ready["degraded"].startswith("store unreachable since ") and ready["ready"]
    assert (after["degraded"], after["metadata_store"]) == (None, True)


# -- starting without the store (real processes, PostgreSQL through a relay) ------------


@pytest.fixture
def relayed(project_dir: Path, postgres_url: str) -> Iterator[tuple[Project, Relay]]:
    """A project whose PostgreSQL store is reached through a relay the test can cut, with a
    production version, a key, and the snapshot a server wrote while the store was up."""
    with Relay(postgres_url) as relay:
        (project_dir / "keel.yaml").write_text(
            f"name: churn\nstore: '{relay.url(postgres_url)}'\n"
            "serving: {rate_limit: 1000/second, timeout_ms: 5000, reload_interval: 200ms}\n"
        )
        with Project.open(project_dir) as project:
            yield project, relay


def _serve(root: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``keel serve`` for ``root`` on a free port, its output going to ``log``."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != STORE_ENV}
    env["PYTHONPATH"] = f"{REPO / 'src'}{os.pathsep}{REPO}"
    command = [sys.executable, "-m", "keel", "serve", "--project", str(root), "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=out, env=env)
    return process, f"http://127.0.0.1:{port}"


def _ready(url: str, process: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    """/readyz once it answers 200 (generous deadline: a loaded machine)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            response = httpx.get(f"{url}/readyz", timeout=2)
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                return body
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the server did not become ready: {log.read_text()}")


def _until(url: str, done: Any, seconds: float = 60) -> dict[str, Any]:
    """Poll /readyz until ``done(body)``; the last body either way."""
    deadline = time.monotonic() + seconds
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{url}/readyz", timeout=10).json()
        if done(body):
            break
        time.sleep(0.2)
    return body


@pytest.mark.postgres
@pytest.mark.anyio
async def test_a_replica_started_during_an_outage_serves_the_snapshot_then_reconciles(
    relayed: tuple[Project, Relay],
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the relay cut, ``keel serve`` starts from the snapshot: ready, degraded, its
    first prediction from version 1 with the snapshot's key. Version 2, deployed straight
    to PostgreSQL during the cut, is served once the relay is restored, and the degraded
    flag clears."""
    project, relay = relayed
    register_model(project, tmp_path, seed=0)
    key = create_key(project)
    await _serve_once(project)
    relay.cut()
    monkeypatch.setenv(STORE_ENV, postgres_url)
    with Project.open(project.root) as direct:
        register_model(direct, tmp_path, seed=1)
    log = tmp_path / "server.log"
    process, url = _serve(project.root, log)
    try:
        during = _ready(url, process, log)
        answer = httpx.post(f"{url}/v1/predict", json={"instance": GOOD}, headers=auth(key))
        refused = httpx.post(f"{url}/v1/predict", json={"instance": GOOD}, headers=auth("x"))
        relay.restore()
        after = _until(url, lambda body: body["degraded"] is None and body["model"] == "churn@2")
        later = httpx.post(f"{url}/v1/predict", json={"instance": GOOD}, headers=auth(key))
    finally:
        process.terminate()
        process.wait(30)
    assert during["model"] == "churn@1" and during["metadata_store"] is False
    assert during["degraded"].startswith("store unreachable since 20"), during
    assert answer.status_code == 200 and refused.status_code == 401
    assert answer.json()["predictions"][0]["model_version"] == "churn@1"
    assert (after["model"], after["degraded"], after["metadata_store"]) == ("churn@2", None, True)
    assert later.json()["predictions"][0]["model_version"] == "churn@2"
    assert "Traceback" not in log.read_text()


def _closed_store(project: Project, relay: Relay) -> None:
    """Close the relay for good: the store's address now refuses every connection."""
    project.close()
    relay.close()


@pytest.mark.postgres
@pytest.mark.anyio
async def test_a_torn_snapshot_with_the_store_down_is_one_sentence_at_start(
    relayed: tuple[Project, Relay], tmp_path: Path
) -> None:
    """Store unreachable and the snapshot file torn: `keel serve` exits 1 with one
    sentence naming the file, before it listens."""
    project, relay = relayed
    register_model(project, tmp_path)
    await _serve_once(project)
    whole = (project.root / SNAPSHOT).read_bytes()
    (project.root / SNAPSHOT).write_bytes(whole[: len(whole) // 2])
    _closed_store(project, relay)
    result = keel("serve", "--project", str(project.root), "--port", str(free_port()))
    message = result.stderr.strip()
    assert result.returncode == 1 and "Traceback" not in message
    assert "cannot reach the metadata store" in message and str(SNAPSHOT) in message
    assert "is unreadable" in message and len(message.splitlines()) == 1


@pytest.mark.postgres
@pytest.mark.anyio
async def test_a_snapshot_of_another_project_is_refused_by_name(
    relayed: tuple[Project, Relay], tmp_path: Path
) -> None:
    """The project is renamed while its store is down: the snapshot written for 'churn'
    is refused, the sentence naming both projects."""
    project, relay = relayed
    register_model(project, tmp_path)
    await _serve_once(project)
    _closed_store(project, relay)
    config = project.root / "keel.yaml"
    config.write_text(config.read_text().replace("name: churn", "name: fraud"))
    result = keel("serve", "--project", str(project.root), "--port", str(free_port()))
    message = result.stderr.strip()
    assert result.returncode == 1 and len(message.splitlines()) == 1
    assert "written for project 'churn', not 'fraud'" in message


def test_without_a_snapshot_an_unreachable_store_is_the_same_sentence_as_before(
    project_dir: Path,
) -> None:
    """No snapshot and nothing listening at the store's address: exit 1 with the store's
    one sentence."""
    store = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    (project_dir / "keel.yaml").write_text(f"name: churn\nstore: '{store}'\n")
    result = keel("serve", "--project", str(project_dir), "--port", str(free_port()))
    message = result.stderr.strip()
    assert result.returncode == 1 and len(message.splitlines()) == 1
    assert message.startswith("error: cannot reach the metadata store at postgresql://")
