"""Every error Keel raises on purpose.

A ``KeelError`` is a user error: its message is one sentence that says what went wrong
and what to do about it, and the CLI prints it without a traceback. Anything else that
escapes is a bug.

    KeelError
    ├── ConfigError            keel.yaml is missing, malformed or invalid
    ├── ProjectError           no project here, or the project folder is unusable
    ├── MissingExtraError      an optional dependency is not installed
    ├── StoreError             the metadata store cannot be used
    │   ├── StoreUnavailable   the database cannot be reached
    │   ├── StoreCorrupt       the database file is not a database
    │   └── LeaseHeld          another holder owns the named lease
    ├── ArtifactError          the artifact store cannot be used
    │   ├── ArtifactNotFound   no artifact with that digest
    │   └── ArtifactCorrupt    the stored bytes do not match their digest
    └── ExampleError           the example generator was asked for something it cannot do
"""

from __future__ import annotations

__all__ = [
    "ArtifactCorrupt",
    "ArtifactError",
    "ArtifactNotFound",
    "ConfigError",
    "ExampleError",
    "KeelError",
    "LeaseHeld",
    "MissingExtraError",
    "ProjectError",
    "StoreCorrupt",
    "StoreError",
    "StoreUnavailable",
]


class KeelError(Exception):
    """Root of every error Keel raises on purpose; the message is for the user."""


class ConfigError(KeelError):
    """keel.yaml is missing, malformed or does not match the schema."""


class ProjectError(KeelError):
    """No project was found, or its folder cannot be used."""


class MissingExtraError(KeelError):
    """An optional dependency is needed; the message names the pip install that fixes it."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"this needs the '{module}' package: install it with pip install 'keel-ml[{extra}]'"
        )
        self.module = module
        self.extra = extra


class StoreError(KeelError):
    """The metadata store cannot be used."""


class StoreUnavailable(StoreError):
    """The database could not be reached."""


class StoreCorrupt(StoreError):
    """The database file exists but is not a usable database."""


class LeaseHeld(StoreError):
    """Another holder owns the named lease and it has not expired."""


class ArtifactError(KeelError):
    """The artifact store cannot be used."""


class ArtifactNotFound(ArtifactError):
    """No artifact with the requested digest exists."""


class ArtifactCorrupt(ArtifactError):
    """The stored bytes do not hash to the digest they are stored under."""


class ExampleError(KeelError):
    """The example data generator was given options it cannot honour."""
