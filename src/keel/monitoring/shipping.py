"""Shipping sealed spool files, as they are, to the artifact store's location.

With ``serving.log_roll: ship`` a replica does not roll its own spools into Parquet
segments (about 55 µs of CPU per record, on the serving process): a thread of its own
copies each sealed spool file byte for byte, with no decoding, to
``<artifacts>/spools/<host>/<spool file name>`` and deletes the local file only once the
copy is confirmed (S3 answered the PUT; a local folder renamed and fsync'd it). The
worker, wherever it runs, lists the shipped files, fetches and rolls them
(``PredictionLog.flush``): a segment's commit marker is named after its spool file, so a
file shipped twice, or rolled by two workers, is counted once.

Durability: a prediction is acknowledged once it is in the local spool; a spool that is
not shipped yet stays on the replica's disk, and the next pass (or the next start of the
replica, after a kill -9 too) ships it. While the store is unreachable the shipper backs
off (up to ``MAX_BACKOFF_S`` between passes) and logs the outage's first failure, then
one line with a count per interval, then the recovery.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from keel.monitoring.segments import atomic_write_chunks, fsync_dir
from keel.monitoring.spool import try_lock

if TYPE_CHECKING:
    from keel.serving.outages import OutageLog
    from keel.store.artifacts import ArtifactStore, StorageOptions

__all__ = ["MAX_BACKOFF_S", "ShipResult", "SpoolDrop", "SpoolShipper", "host_prefix"]

logger = logging.getLogger("keel.monitoring")

MAX_BACKOFF_S = 60.0  # the longest wait between passes while the store is unreachable
FOLDER = "spools"  # under the artifact store's root
T = TypeVar("T")
_ATOMIC_PUT = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"}  # one PUT: all or nothing


def host_prefix() -> str:
    """This machine's folder among the shipped spools: its host name, made path-safe."""
    return re.sub(r"[^A-Za-z0-9]+", "_", socket.gethostname())[:48] or "host"


class SpoolDrop:
    """Raw spool files under ``<location>/spools/<prefix>/``: a local folder or any fsspec
    URL (``s3://bucket/keel``, with ``storage`` holding s3fs's options).

    Remote failures raise ``ArtifactStoreUnavailable`` with one sentence naming the cause.
    """

    def __init__(self, location: str, storage: StorageOptions | None = None) -> None:
        self.location = str(location)
        self.storage: StorageOptions = storage or {}
        self._local = "://" not in self.location or self.location.startswith("file://")
        self._fs: Any = None
        root = self.location.removeprefix("file://").rstrip("/")
        self._root = f"{root}/{FOLDER}"

    @classmethod
    def for_artifacts(cls, artifacts: ArtifactStore) -> SpoolDrop:
        """The drop beside ``artifacts``'s blobs, reached with the same settings."""
        return cls(artifacts.location, artifacts.storage)

    def put(self, path: Path, prefix: str) -> str:
        """Copy the spool file at ``path`` under ``prefix``; returns its key once the copy
        is durable (a second put of the same file replaces the first)."""
        key = f"{self._root}/{prefix}/{path.name}"
        if self._local:
            _copy_local(path, Path(key))
            return key
        fs = self._filesystem()
        if _protocol(fs) in _ATOMIC_PUT:
            self._remote(lambda: fs.put_file(str(path), key))
        else:
            tmp = f"{self._root}/.tmp/{uuid.uuid4().hex}.part"
            self._remote(lambda: fs.put_file(str(path), tmp))
            self._remote(lambda: fs.mv(tmp, key))
        return key

    def list_keys(self) -> list[str]:
        """Every shipped spool file's key, oldest spool first (names start with the time)."""
        if self._local:
            found = [str(path) for path in Path(self._root).glob("*/*.log")]
        else:
            fs = self._filesystem()

            def listing() -> list[str]:
                fs.invalidate_cache(self._root)
                if not fs.exists(self._root):
                    return []
                return [str(key) for key in fs.find(self._root) if str(key).endswith(".log")]

            found = self._remote(listing)
        return sorted(found, key=lambda key: (key.rsplit("/", 1)[-1], key))

    def fetch(self, key: str, dest: Path) -> Path:
        """Copy a shipped file to ``dest`` (which appears only when complete)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        if self._local:
            shutil.copyfile(key, dest)
            return dest
        fs = self._filesystem()
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".keel-", suffix=".part")
        os.close(fd)
        try:
            self._remote(lambda: fs.get_file(key, tmp))
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return dest

    def delete(self, key: str) -> None:
        """Remove a shipped file (one already gone is fine: another worker rolled it)."""
        if self._local:
            Path(key).unlink(missing_ok=True)
            return
        fs = self._filesystem()

        def remove() -> None:
            with contextlib.suppress(FileNotFoundError):
                fs.rm_file(key)

        self._remote(remove)

    def set_aside(self, key: str) -> str:
        """Move a shipped file that did not read cleanly to ``spools-damaged/`` (beside
        ``spools/``) for a person to look at; returns its new key."""
        name = key.rsplit("/", 1)[-1]
        target = f"{self.location.removeprefix('file://').rstrip('/')}/{FOLDER}-damaged/{name}"
        if self._local:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            os.replace(key, target)
            return target
        fs = self._filesystem()
        self._remote(lambda: fs.mv(key, target))
        return target

    def _filesystem(self) -> Any:
        if self._fs is None:
            from keel.store.artifacts import open_filesystem

            self._fs = open_filesystem(self.location, self.storage)[0]
        return self._fs

    def _remote(self, call: Callable[[], T]) -> T:
        from keel.errors import ArtifactStoreUnavailable
        from keel.store.artifacts import is_botocore, unavailable_reason

        try:
            return call()
        except (OSError, TimeoutError) as error:
            raise ArtifactStoreUnavailable(unavailable_reason(self.location, error)) from None
        except Exception as error:
            if is_botocore(error):
                raise ArtifactStoreUnavailable(unavailable_reason(self.location, error)) from None
            raise


def _protocol(fs: Any) -> str:
    protocol = fs.protocol
    return str(protocol if isinstance(protocol, str) else protocol[0])


def _copy_local(source: Path, target: Path) -> None:
    """Copy to a temporary name, fsync, rename into place, fsync the folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as src:
        atomic_write_chunks(target, iter(lambda: src.read(1 << 20), b""))


@dataclass(frozen=True)
class ShipResult:
    """What one pass shipped; ``pending`` files wait for the next (``error`` says why)."""

    shipped: int
    pending: int = 0
    error: str | None = None


class SpoolShipper:
    """Ships every sealed spool file of ``spool_dir`` to ``drop`` under ``prefix``.

    ``ship()`` is one pass (any thread); ``start()`` runs passes on a daemon thread every
    ``interval`` seconds, and at once after ``wake()`` unless it is backing off from a
    failed pass (the wait doubles per failed pass, up to ``MAX_BACKOFF_S``). A file
    still locked by its writer is left for a later pass; a file another shipper holds
    is skipped by this one.
    """

    def __init__(
        self,
        spool_dir: Path,
        drop: SpoolDrop,
        *,
        prefix: str | None = None,
        interval: float = 5.0,
        max_backoff: float = MAX_BACKOFF_S,
        outage_every_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spool_dir = spool_dir
        self.drop = drop
        self.prefix = prefix or host_prefix()
        self.interval = interval
        self.max_backoff = max_backoff
        self.failures = 0  # passes failed in a row
        self._clock = clock
        self._outage_every_s = outage_every_s
        self._outage: OutageLog | None = None
        self._pass = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._next = 0.0
        self._thread: threading.Thread | None = None

    def ship(self, *, stop_when_unreachable: bool = True) -> ShipResult:
        """Ship every unlocked spool file, oldest first; a file that fails stays for the
        next pass. An unreachable store ends the pass (every later file would wait as
        long); ``stop_when_unreachable=False`` tries every file anyway."""
        with self._pass:
            return self._ship_all(stop_when_unreachable)

    def _ship_all(self, stop_when_unreachable: bool) -> ShipResult:
        paths = sorted(self.spool_dir.glob("*.log")) if self.spool_dir.exists() else []
        shipped, failed = 0, 0
        error: Exception | None = None
        for index, path in enumerate(paths):
            try:
                shipped += self._ship_one(path)
            except Exception as problem:
                error = problem
                self._failed(problem)
                if stop_when_unreachable and _unreachable(problem):
                    return self._done(ShipResult(shipped, failed + len(paths) - index, str(error)))
                failed += 1
        if error is None:
            if self._outage is not None:
                self._outage.succeeded()
            return self._done(ShipResult(shipped))
        return self._done(ShipResult(shipped, failed, str(error)))

    def _ship_one(self, path: Path) -> int:
        handle = try_lock(path)
        if handle is None:
            return 0  # still being written, or another shipper has it
        try:
            if not path.exists():
                return 0  # shipped by another process while we waited
            if os.fstat(handle.fileno()).st_size:
                self.drop.put(path, self.prefix)  # the local file goes only after this
            path.unlink()
            fsync_dir(path.parent)
        finally:
            handle.close()
        return 1

    def _done(self, result: ShipResult) -> ShipResult:
        if result.error is None:
            self.failures = 0
            self._next = self._clock() + self.interval
        else:
            self.failures += 1
            wait = min(self.interval * 2 ** (self.failures - 1), self.max_backoff)
            self._next = self._clock() + max(wait, self.interval)
        return result

    def _failed(self, error: Exception) -> None:
        if self._outage is None:
            from keel.serving.outages import OutageLog

            self._outage = OutageLog("prediction spool uploads", logger, self._outage_every_s)
        self._outage.failed(error)

    # -- the background thread ------------------------------------------------------

    def start(self) -> None:
        """Ship in a daemon thread: now (a restarted replica ships what it had), then
        every ``interval`` seconds, backing off while the store is unreachable."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="keel-spool-shipper", daemon=True
            )
            self._thread.start()

    def wake(self) -> None:
        """A spool was sealed: ship it now, unless backing off from a failure."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread (a pass under way finishes first)."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(max(0.0, self._next - self._clock()))
            self._wake.clear()
            if self._stopping:
                return
            if self.failures and self._clock() < self._next:
                continue  # woken while backing off: wait out the backoff
            try:
                self.ship()
            except Exception:  # a bug, not an outage: the server must keep serving
                logger.exception("shipping prediction spools failed; will retry")
                self._done(ShipResult(0, 1, "unexpected error"))


def _unreachable(error: Exception) -> bool:
    from keel.errors import ArtifactStoreUnavailable

    return isinstance(error, ArtifactStoreUnavailable | OSError | TimeoutError)
