"""The metadata store on SQLite and PostgreSQL: migrations, corruption, reachability."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from keel.errors import StoreCorrupt, StoreUnavailable
from keel.store import MetadataStore
from keel.store.migrate import VERSION_TABLE, expected_heads


def _tables(store: MetadataStore) -> set[str]:
    return set(sa.inspect(store.engine).get_table_names())


def test_open_creates_schema(store_url: str) -> None:
    """Opening a fresh store applies every migration."""
    store = MetadataStore.open(store_url)
    try:
        assert {"keel_leases", VERSION_TABLE} <= _tables(store)
    finally:
        store.close()


def test_reopen_is_a_no_op(store_url: str) -> None:
    """A second open finds the schema current and changes nothing."""
    MetadataStore.open(store_url).close()
    store = MetadataStore.open(store_url)
    try:
        with store.begin() as connection:
            versions = connection.execute(sa.text(f"SELECT * FROM {VERSION_TABLE}")).all()
        assert {row[0] for row in versions} == expected_heads()
    finally:
        store.close()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    """The embedded store uses WAL so readers never block the writer."""
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'keel.db'}")
    try:
        with store.begin() as connection:
            assert connection.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        store.close()


def test_corrupted_sqlite_file_is_refused(tmp_path: Path) -> None:
    """A file that is not a SQLite database gives a clear error and is left untouched."""
    path = tmp_path / "keel.db"
    garbage = b"this is not a database\x00" * 100
    path.write_bytes(garbage)
    with pytest.raises(StoreCorrupt, match="is not a SQLite database or is corrupt"):
        MetadataStore.open(f"sqlite:///{path}")
    assert path.read_bytes() == garbage


def test_sqlite_file_with_damaged_pages_is_refused(tmp_path: Path) -> None:
    """A real database whose pages were overwritten is reported corrupt, not a crash."""
    path = tmp_path / "keel.db"
    MetadataStore.open(f"sqlite:///{path}").close()
    data = bytearray(path.read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorrupt):
        MetadataStore.open(f"sqlite:///{path}")


def test_refused_connection_is_a_clear_error() -> None:
    """A PostgreSQL URL nobody listens on fails at once with the URL and what to check."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StoreUnavailable, match=f"cannot reach the metadata store.*:{port}"):
        MetadataStore.open(f"postgresql://keel:secret@127.0.0.1:{port}/keel")


def test_silent_server_times_out_instead_of_hanging() -> None:
    """A server that accepts TCP but never answers is given up on after the timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes handshakes; nobody ever speaks
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            MetadataStore.open(f"postgresql://keel:secret@127.0.0.1:{port}/keel")
        elapsed = time.monotonic() - started
    # the bound is the connect timeout (5 s) plus slack; the point is "no hang"
    assert elapsed < 12, f"took {elapsed:.1f}s"
    assert "secret" not in str(caught.value)


def test_unsupported_url_is_a_clear_error() -> None:
    """A URL of an unknown kind names the kinds Keel accepts."""
    with pytest.raises(StoreUnavailable, match="sqlite:///"):
        MetadataStore.open("mysql://root@localhost/keel")


_OPEN_IN_CHILD = """
import sys
from keel.store import MetadataStore
MetadataStore.open(sys.argv[1]).close()
print("ok")
"""


def test_two_processes_opening_a_fresh_store_at_once(store_url: str) -> None:
    """Racing first opens both succeed and the schema is migrated exactly once."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_IN_CHILD, store_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0, 0, 0], results
    store = MetadataStore.open(store_url)
    try:
        with store.begin() as connection:
            versions = connection.execute(sa.text(f"SELECT * FROM {VERSION_TABLE}")).all()
        assert sorted(row[0] for row in versions) == sorted(expected_heads())
    finally:
        store.close()


_RACE_FIRST_OPENS = """
import multiprocessing, sys
from pathlib import Path
from keel.store import MetadataStore

def open_when_released(url, barrier, failures):
    barrier.wait()
    try:
        MetadataStore.open(url).close()
    except Exception as error:
        failures.put(str(error))

rounds, racers = int(sys.argv[2]), int(sys.argv[3])
context = multiprocessing.get_context("fork")
failures = context.Queue()
for number in range(rounds):
    url = f"sqlite:///{Path(sys.argv[1]) / str(number) / 'keel.db'}"
    barrier = context.Barrier(racers)
    children = [
        context.Process(target=open_when_released, args=(url, barrier, failures))
        for _ in range(racers)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join()
    if any(child.exitcode != 0 for child in children):
        failures.put(f"a racer exited with {[child.exitcode for child in children]}")
failed = []
while not failures.empty():
    failed.append(failures.get())
print(len(failed), sorted(set(failed)))
"""


def test_racing_first_opens_of_new_sqlite_files_never_lock(tmp_path: Path) -> None:
    """Four processes released together on a new file: none is told the store is locked.

    Two connections converting a new file to WAL at once deadlock, and SQLite answers one
    of them "database is locked" at once, whatever the busy timeout; before the switch was
    serialised this failed about one open in a hundred.
    """
    run = subprocess.run(
        [sys.executable, "-c", _RACE_FIRST_OPENS, str(tmp_path), "50", "4"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert run.stdout.strip() == "0 []", run.stdout


_WRITE_AND_EXIT = """
import sys
from keel.store import MetadataStore
store = MetadataStore.open(sys.argv[1])
store.leases.acquire("other-process", "b", ttl=30)
store.close()
"""


def test_reopening_in_one_process_keeps_the_wal_safe(tmp_path: Path) -> None:
    """A second open beside live connections must not let another process drop the WAL.

    Opening and closing the database file outside SQLite cancels this process's POSIX
    locks; a second process then believes it is the last user, checkpoints and deletes the
    WAL, and the live connections here corrupt the database on their next write.
    """
    url = f"sqlite:///{tmp_path / 'keel.db'}"
    first = MetadataStore.open(url)
    live = first.engine.connect()
    live.execute(sa.text("SELECT count(*) FROM keel_leases")).scalar()
    second = MetadataStore.open(url)
    subprocess.run([sys.executable, "-c", _WRITE_AND_EXIT, url], check=True, timeout=60)
    first.leases.acquire("this-process", "a", ttl=30)
    live.execute(sa.text("SELECT count(*) FROM keel_leases")).scalar()
    live.close()
    with first.begin() as connection:
        assert connection.execute(sa.text("PRAGMA integrity_check")).scalar() == "ok"
        names = connection.execute(sa.text("SELECT name FROM keel_leases")).scalars().all()
    assert sorted(names) == ["other-process", "this-process"]
    second.close()
    first.close()
