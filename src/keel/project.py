"""A Keel project: a folder with a keel.yaml, and the stores it opens.

``Project.open(path)`` is the one place that wires config and stores together; every CLI
command and the server start from it. Stores are opened on first use, so commands that
only read the config never touch a database.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from keel.config import LoadedConfig, load_config
from keel.configtext import STATE_DIR, STORE_ENV, config_path, find_root, store_url
from keel.schema import KeelConfig

if TYPE_CHECKING:
    from keel.store.artifacts import ArtifactStore
    from keel.store.metadata import MetadataStore

__all__ = ["STATE_DIR", "STORE_ENV", "Project", "find_root"]


class Project:
    """The config, state folder and stores of one Keel project."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        self.root = loaded.root

    @classmethod
    def open(cls, path: str | Path | None = None) -> Project:
        """Open the project at ``path`` (a folder or its keel.yaml), or above the cwd."""
        return cls(load_config(config_path(path)))

    @property
    def config(self) -> KeelConfig:
        return self.loaded.config

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def store_url(self) -> str:
        """KEEL_STORE_URL, else store: in keel.yaml, else .keel/keel.db (SQLite)."""
        return store_url(self.root, self.config.store)

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

        compute = self.config.compute
        send = compute is None or compute.credentials == "send"
        return ArtifactStore(
            self.artifacts_location, storage_options(self.config.storage), send_credentials=send
        )

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
