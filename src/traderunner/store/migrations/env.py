"""Alembic's environment for the store: runs on the connection that ``migrate`` hands in.

There is no ``alembic.ini`` and no URL here: :func:`traderunner.store.migrate.upgrade` builds
the configuration in code and passes an open connection in ``config.attributes``, so the
store's own engine (SQLite pragmas included) does the work.
"""

from __future__ import annotations

from alembic import context

from traderunner.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things in place: batch mode rebuilds the table instead.
    render_as_batch=True,
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
