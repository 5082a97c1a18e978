"""Bring a metadata database to the newest schema, safely when processes race.

Migrations run under a lock: an advisory transaction lock on PostgreSQL, a lock file
beside the database on SQLite. A process that finds the schema current takes no lock.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock

__all__ = ["VERSION_TABLE", "expected_heads", "lock_path", "upgrade"]

VERSION_TABLE = "keel_alembic_version"
_PG_LOCK_KEY = 0x6B65656C  # "keel"
_SCRIPTS = Path(__file__).parent / "migrations"


def expected_heads() -> set[str]:
    """The newest revision of every branch (one branch per layer)."""
    return set(ScriptDirectory.from_config(_config()).get_heads())


def upgrade(engine: sa.Engine, lock_file: Path | None = None) -> bool:
    """Apply pending migrations; return whether any ran."""
    config = _config()
    heads = set(ScriptDirectory.from_config(config).get_heads())
    if _current(engine) == heads:
        return False
    if engine.dialect.name == "postgresql":
        return _upgrade_postgres(engine, config, heads)
    with FileLock(str(lock_file or lock_path(engine)), timeout=60):
        return _run(engine, config, heads)


def lock_path(engine: sa.Engine) -> Path:
    """The lock file beside a SQLite database that serialises its set-up."""
    return Path(str(engine.url.database) + ".lock")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


def _current(engine: sa.Engine) -> set[str]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return set(context.get_current_heads())


def _upgrade_postgres(engine: sa.Engine, config: Config, heads: set[str]) -> bool:
    with engine.begin() as connection:
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        return _apply(connection, config, heads)


def _run(engine: sa.Engine, config: Config, heads: set[str]) -> bool:
    with engine.begin() as connection:
        return _apply(connection, config, heads)


def _apply(connection: sa.Connection, config: Config, heads: set[str]) -> bool:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    if set(context.get_current_heads()) == heads:
        return False  # another process finished while we waited for the lock
    config.attributes["connection"] = connection
    command.upgrade(config, "heads")
    return True
