"""A Keel project: a folder with a keel.yaml, and the stores it opens.

``Project.open(path)`` is the one place that wires config and stores together; every CLI
command and the server start from it. Stores are opened on first use, so commands that
only read the config never touch a database.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from keel.config import CONFIG_FILE, LoadedConfig, load_config
from keel.errors import ProjectError
from keel.schema import KeelConfig

if TYPE_CHECKING:
    from keel.store.artifacts import ArtifactStore
    from keel.store.metadata import MetadataStore

__all__ = ["STATE_DIR", "STORE_ENV", "Project", "find_root"]

STATE_DIR = ".keel"
STORE_ENV = "KEEL_STORE_URL"


def find_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` that holds a keel.yaml."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise ProjectError(
        f"no {CONFIG_FILE} in {start} or any folder above it; run `keel init` to create a "
        "project or pass --project DIR"
    )


class Project:
    """The config, state folder and stores of one Keel project."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        self.root = loaded.root

    @classmethod
    def open(cls, path: str | Path | None = None) -> Project:
        """Open the project at ``path`` (a folder or its keel.yaml), or above the cwd."""
        where = Path(path) if path is not None else Path.cwd()
        if where.is_file():
            return cls(load_config(where))
        if path is not None and not where.exists():
            raise ProjectError(f"{where} does not exist; pass the folder that holds keel.yaml")
        return cls(load_config(find_root(where) / CONFIG_FILE))

    @property
    def config(self) -> KeelConfig:
        return self.loaded.config

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def store_url(self) -> str:
        """KEEL_STORE_URL, else store: in keel.yaml, else .keel/keel.db (SQLite)."""
        url = os.environ.get(STORE_ENV) or self.config.store
        if url is None:
            return f"sqlite:///{self.state_dir / 'keel.db'}"
        return _anchor_sqlite(url, self.root)

    @property
    def artifacts_location(self) -> str:
        location = self.config.artifacts or str(self.state_dir / "artifacts")
        if "://" in location or Path(location).is_absolute():
            return location
        return str(self.root / location)

    @cached_property
    def store(self) -> MetadataStore:
        from keel.store.metadata import MetadataStore

        return MetadataStore.open(self.store_url)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        from keel.store.artifacts import ArtifactStore, storage_options

        return ArtifactStore(self.artifacts_location, storage_options(self.config.storage))

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _anchor_sqlite(url: str, root: Path) -> str:
    """Relative SQLite paths are relative to the project, not to the cwd."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite:///:memory:":
        return url
    path = Path(url.removeprefix(prefix))
    return url if path.is_absolute() else f"{prefix}{root / path}"
