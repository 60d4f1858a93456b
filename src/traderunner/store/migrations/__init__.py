"""Alembic migrations of the store; :mod:`traderunner.store.migrate` runs them."""
