"""Alembic environment: run with a connection passed in ``config.attributes['connection']``."""

from alembic import context

from visionloop.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
