"""The last-known-good snapshot a replica keeps on local disk, to start and serve while
the metadata store is down.

Under ``.keel/snapshot/`` the replica keeps ``snapshot.json`` (the project's name, the
store it mirrors, the production, canary and shadow versions with what serving each needs,
the running rollout records, the active API keys' hashes and scopes, and when it was
written) and ``artifacts/``, the served models' bytes, content-addressed and verified on
every read as in the artifact store. The file is replaced atomically (a temporary file,
fsynced, renamed) whenever the replica's view of the store changes, so a reader finds the
old snapshot or the new one, never half of one; several workers of one server share the
folder and write the same view.

At start, a store that cannot be reached within a short probe is not fatal when a
snapshot of this project and this store is there: the server starts from it, degraded,
and reconciles when the store answers again. A snapshot that is unreadable, names another
project or store, or whose model bytes are missing is refused with one sentence; when the
store is up, the snapshot is not read at all and is simply written anew.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.config import mask_url
from keel.errors import ArtifactError, SnapshotError, StoreUnavailable
from keel.serving.keys import ApiKey
from keel.serving.source import ModelRecipe
from keel.store.artifacts import ArtifactStore

if TYPE_CHECKING:
    from keel.delivery.staging import Rollout
    from keel.project import Project
    from keel.serving.arms import Staging
    from keel.serving.source import RegistrySource
    from keel.serving.state import ServerState

__all__ = [
    "FORMAT",
    "STORE_DOWN_ENV",
    "STORE_TIMEOUT_S",
    "ModelCache",
    "Snapshot",
    "SnapshotFolder",
    "SnapshotKeeper",
    "StoreStart",
    "View",
    "check_start",
    "decode",
    "degraded_since",
    "encode",
    "iso_time",
    "keeper_for",
    "open_store",
    "refusal",
    "snapshot_folder",
    "store_identity",
    "view_of",
]

FORMAT = 1
SNAPSHOT_DIR = "snapshot"  # under the project's state folder
SNAPSHOT_FILE = "snapshot.json"
STORE_DOWN_ENV = "KEEL_STORE_DOWN_SINCE"  # set by `keel serve` for its workers: when it found
STORE_TIMEOUT_S = 5.0  # the bound on each of the server's waits on a PostgreSQL store
_KEEP_UNUSED_S = 3600.0  # cached model bytes no snapshot names are removed after this


@dataclass(frozen=True)
class View:
    """What a replica sees of the store: the versions it serves and the keys it admits."""

    production: ModelRecipe | None = None
    canary: ModelRecipe | None = None
    shadow: ModelRecipe | None = None
    rollouts: tuple[Rollout, ...] = ()
    keys: tuple[ApiKey, ...] = ()

    @property
    def recipes(self) -> list[ModelRecipe]:
        return [r for r in (self.production, self.canary, self.shadow) if r is not None]

    def staging(self) -> Staging:
        """The canary and shadow to load beside production (those with a recipe)."""
        from keel.serving.arms import Staging
        from keel.serving.source import staging_of

        staged = staging_of(self.rollouts)
        canary = self.canary.ref if self.canary and self.canary.ref == staged.canary else None
        shadow = self.shadow.ref if self.shadow and self.shadow.ref == staged.shadow else None
        return Staging(canary, staged.share if canary else 0.0, shadow)


@dataclass(frozen=True)
class Snapshot:
    """A view of one project's store, as one replica saw it at ``written_at``."""

    project: str
    store: str  # the store's identity: its URL without the password
    written_at: float
    view: View


# -- the pure part: encoding, decoding, checking --------------------------------------


def encode(snapshot: Snapshot) -> dict[str, Any]:
    """The JSON document of ``snapshot``."""
    view = snapshot.view
    return {
        "format": FORMAT,
        "project": snapshot.project,
        "store": snapshot.store,
        "written_at": snapshot.written_at,
        "production": _recipe_json(view.production),
        "canary": _recipe_json(view.canary),
        "shadow": _recipe_json(view.shadow),
        "rollouts": [dataclasses.asdict(rollout) for rollout in view.rollouts],
        "keys": [dataclasses.asdict(key) for key in view.keys],
    }


def decode(data: Any) -> Snapshot:
    """The snapshot in a JSON document; ``ValueError`` saying what is wrong with it."""
    from keel.delivery.staging import Rollout

    if not isinstance(data, dict):
        raise ValueError("it is not a JSON object")
    if data.get("format") != FORMAT:
        raise ValueError(f"format {data.get('format')!r} is not {FORMAT}")
    try:
        view = View(
            production=_recipe(data["production"]),
            canary=_recipe(data["canary"]),
            shadow=_recipe(data["shadow"]),
            rollouts=tuple(Rollout(**row) for row in data["rollouts"]),
            keys=tuple(ApiKey(**{**row, "scopes": tuple(row["scopes"])}) for row in data["keys"]),
        )
        return Snapshot(str(data["project"]), str(data["store"]), float(data["written_at"]), view)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{type(error).__name__}: {error}") from None


def view_of(
    state: ServerState, registry: RegistrySource, keys: tuple[ApiKey, ...], current: str | None
) -> View | None:
    """What a server serves of the store, or None when that is not what the store says
    (production ``current`` is not the one served: it failed to load, or is loading)."""
    served, delivery = state.served, state.delivery
    if state.degraded is not None or served.ref != current or served.stand_in_for is not None:
        return None
    canary = delivery.canary.ref if delivery and delivery.canary else None
    shadow = delivery.shadow.served.ref if delivery and delivery.shadow else None
    return View(
        production=registry.known(served.ref),
        canary=registry.known(canary),
        shadow=registry.known(shadow),
        rollouts=registry.rollouts,
        keys=keys,
    )


def refusal(snapshot: Snapshot, project: str, store: str) -> str | None:
    """Why ``snapshot`` cannot stand for ``project`` on ``store``, or None."""
    if snapshot.project != project:
        return f"it was written for project '{snapshot.project}', not '{project}'"
    if snapshot.store != store:
        return f"it mirrors the store {snapshot.store}, not {store}"
    return None


def store_identity(url: str) -> str:
    """The store a snapshot mirrors, as it is written down: its URL without the password."""
    return mask_url(url)


def degraded_since(at: float) -> str:
    """What ``/readyz`` says while the store is unreachable."""
    return f"store unreachable since {iso_time(at)}"


def iso_time(at: float) -> str:
    """``at`` (epoch seconds) as an ISO 8601 UTC time, to the second."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def _recipe_json(recipe: ModelRecipe | None) -> dict[str, Any] | None:
    return None if recipe is None else dataclasses.asdict(recipe)


def _recipe(data: Any) -> ModelRecipe | None:
    if data is None:
        return None
    recipe = ModelRecipe(**data)
    if not isinstance(recipe.artifact, str) or len(recipe.artifact) != 64:
        raise ValueError(f"model {recipe.label} has no sha256 digest")
    return recipe


# -- the shell: the folder on disk -----------------------------------------------------


class ModelCache:
    """Model bytes by digest, verified on every read; a corrupt copy is replaced."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.store = ArtifactStore(folder)

    def put(self, digest: str, data: bytes) -> None:
        """Keep ``data`` (already verified against ``digest``), replacing a bad copy."""
        self._path(digest).unlink(missing_ok=True)
        self.store.put_bytes(data)

    def problem(self, digest: str) -> str | None:
        """Why the bytes of ``digest`` cannot be served from here, or None."""
        try:
            self.store.get_bytes(digest)
        except ArtifactError as error:
            return str(error)
        return None

    def touch(self, digest: str) -> None:
        """Mark ``digest`` as just used, so no other worker removes it as unused."""
        with contextlib.suppress(OSError):
            os.utime(self._path(digest))

    def keep_only(self, digests: Iterable[str], now: float) -> None:
        """Mark ``digests`` as in use; remove the bytes nothing used for a while."""
        keep = set(digests)
        for digest in list(self.store.digests()):
            path = self._path(digest)
            try:
                if digest in keep:
                    os.utime(path, (now, now))
                elif now - path.stat().st_mtime > _KEEP_UNUSED_S:
                    path.unlink()
            except OSError:  # another worker of this server removed it first
                continue

    def _path(self, digest: str) -> Path:
        """Where the artifact store lays the bytes out (see keel.store.artifacts)."""
        return self.folder / "sha256" / digest[:2] / digest


class SnapshotFolder:
    """``.keel/snapshot``: the snapshot file and the models it names."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = path / SNAPSHOT_FILE
        self.cache = ModelCache(path / "artifacts")

    def write(self, snapshot: Snapshot) -> None:
        """Replace the snapshot atomically (readable by its owner only: it holds key hashes)."""
        from keel.monitoring.segments import fsync_dir

        self.path.mkdir(parents=True, exist_ok=True)
        data = json.dumps(encode(snapshot), indent=1).encode()
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".snapshot-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.file)
            fsync_dir(self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self.cache.keep_only((r.artifact for r in snapshot.view.recipes), snapshot.written_at)

    def read_for(self, project: str, store: str, down: StoreUnavailable) -> Snapshot | None:
        """The snapshot to start from while the store is ``down``; None when there is none.

        Raises ``SnapshotError`` when it is unreadable, not this project's or this store's,
        or when the bytes of a model it names are missing or corrupt.
        """
        if not self.file.exists():
            return None
        try:
            snapshot = decode(json.loads(self.file.read_bytes()))
        except (OSError, ValueError) as error:
            raise self._refused(down, f"is unreadable ({error})") from None
        why = refusal(snapshot, project, store)
        for recipe in snapshot.view.recipes:
            if why is None and (problem := self.cache.problem(recipe.artifact)) is not None:
                why = f"names model {recipe.label}, whose cached bytes are unusable ({problem})"
        if why is not None:
            raise self._refused(down, f"was refused: {why}")
        return snapshot

    def _refused(self, down: StoreUnavailable, why: str) -> SnapshotError:
        return SnapshotError(
            f"{str(down).split(';')[0]}, and the snapshot {self.file} to start from without "
            f"it {why}; bring the store back, or replace {self.path} with a copy from another "
            "replica of this project"
        )


# -- opening the store for a server ----------------------------------------------------


@dataclass(frozen=True)
class StoreStart:
    """How a server starts: from the store, or from ``snapshot`` (unreachable since ``since``)."""

    snapshot: Snapshot | None = None
    since: float | None = None


def open_store(project: Project, folder: SnapshotFolder) -> StoreStart:
    """Open the project's store for a server, each wait bounded by ``STORE_TIMEOUT_S``.

    When it cannot be reached (or ``keel serve`` found it down just before: see
    ``STORE_DOWN_ENV``), the server starts from the snapshot, with a store object that
    connects once the database is back. With no snapshot the store's own error is raised,
    as it always was. A store the caller opened already is used as it is.
    """
    from keel.store.metadata import MetadataStore, create_engine

    if "store" in vars(project):  # opened by the caller (a test, a command)
        return StoreStart()
    url = project.store_url
    hint = os.environ.get(STORE_DOWN_ENV)
    try:
        if hint is not None:
            raise StoreUnavailable(f"cannot reach the metadata store at {mask_url(url)}")
        project.store = MetadataStore.open(url, timeout_s=STORE_TIMEOUT_S)
        return StoreStart()
    except StoreUnavailable as down:
        snapshot = folder.read_for(project.config.name, store_identity(url), down)
        if snapshot is None:
            raise
        project.store = MetadataStore(create_engine(url, timeout_s=STORE_TIMEOUT_S))
        return StoreStart(snapshot, float(hint) if hint else time.time())


def keeper_for(project: Project) -> SnapshotKeeper:
    """Open the store for a server (see ``open_store``) and keep its snapshot."""
    folder = snapshot_folder(project)
    start = open_store(project, folder)
    return SnapshotKeeper(folder, project.config.name, store_identity(project.store_url), start)


def snapshot_folder(project: Project) -> SnapshotFolder:
    return SnapshotFolder(project.state_dir / SNAPSHOT_DIR)


def check_start(
    project: Project, folder: SnapshotFolder, down: Callable[[], StoreUnavailable | None]
) -> Snapshot | None:
    """For ``keel serve``: None when the store answers (and is migrated), else the snapshot
    the server will start from. ``down`` tells why the store did not answer a short probe
    (``keel serve`` probes while it loads the server), or None if it did.

    Without a snapshot the store is opened as it always was (its error is the sentence).
    """
    if folder.file.exists() and (unreachable := down()) is not None:
        identity = store_identity(project.store_url)
        snapshot = folder.read_for(project.config.name, identity, unreachable)
        if snapshot is not None:  # else removed meanwhile: the store's own error, below
            return snapshot
    project.store  # noqa: B018 - migrated here once, not in every worker at once
    return None


class SnapshotKeeper:
    """Writes a server's view of the store to its snapshot folder whenever it changes."""

    def __init__(self, folder: SnapshotFolder, project: str, store: str, start: StoreStart) -> None:
        self.folder = folder
        self.project = project
        self.store = store
        self.start = start  # how the server started: from the store or from a snapshot
        self._written: View | None = None

    def due(self, view: View) -> bool:
        """Whether ``view`` differs from what this server wrote last."""
        return view != self._written

    def save(self, view: View, now: float) -> None:
        """Write ``view`` as the snapshot (in a thread: it fsyncs)."""
        self.folder.write(Snapshot(self.project, self.store, now, view))
        self._written = view
