"""Alembic environment: Keel always hands in an open connection (see keel.store.migrate)."""

from alembic import context

from keel.store.migrate import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
