"""Schema migrations (Alembic): every entrypoint brings the store to the code's revision.

:meth:`Store.connect <traderunner.store.Store.connect>` calls :func:`upgrade` before anything
reads or writes, so ``traderunner`` commands, workers and the dashboard all run on the schema
they were written for:

* an empty database gets every table by running the migrations from the first;
* a store made before migrations existed (traderunner 0.1: tables from ``create_all`` and
  ``store_meta.schema_version = 1``, no ``alembic_version``) is *stamped* with the baseline
  revision, whose tables it already has, and then upgraded;
* a store at an older revision is upgraded; one at the code's revision is left alone (one
  small query);
* a store at a revision this code does not know (written by a newer traderunner) is refused
  with one line, before anything is touched: upgrade traderunner on this machine.

Migrations live in ``store/migrations/versions`` (one file per revision). The live schema in
``store/schema.py`` must equal what they build; a test compares the two.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.resources import files

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from traderunner.errors import StoreError
from traderunner.store import schema

BASELINE = "0001_baseline"
# Alembic's ``context`` is one module-level proxy: two threads migrating at once in a process
# would configure each other's run. Processes race safely (see ``upgrade``).
_LOCK = threading.Lock()
_PG_LOCK_KEY = 0x7472_6D69_6772  # "trmigr": any fixed 64-bit number of our own


def _record_created_at(conn: Connection) -> None:
    table = schema.store_meta
    found = conn.execute(
        sa.select(table.c.value).where(table.c.key == "created_at")
    ).scalar_one_or_none()
    if found is None:
        conn.execute(table.insert().values(key="created_at", value=datetime.now(UTC).isoformat()))


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(files("traderunner.store") / "migrations"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision this code knows."""
    found = ScriptDirectory.from_config(_config()).get_current_head()
    assert found is not None, "the store has no migrations"
    return found


def known_revisions() -> set[str]:
    return {s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions()}


def current(conn: Connection) -> str | None:
    """The store's revision, or None when it has never been migrated."""
    return MigrationContext.configure(conn).get_current_revision()


def _is_legacy(conn: Connection) -> bool:
    """A pre-migration (0.1) store: its tables, no ``alembic_version``."""
    tables = set(sa.inspect(conn).get_table_names())
    return "store_meta" in tables and "alembic_version" not in tables


def upgrade(engine: Engine, where: str, attempts: int = 3) -> str:
    """Bring the store to :func:`head`; returns the revision. StoreError when refused.

    Several processes started together (``traderunner up``) may race to migrate a fresh
    database: the loser's DDL fails on a table the winner created, and its retry then finds
    the new revision and does nothing.
    """
    target = head()
    with _LOCK, _sqlite_file_lock(engine):
        return _upgrade(engine, where, target, attempts)


@contextlib.contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """One migrator at a time per SQLite file, across processes.

    pysqlite runs DDL outside a transaction, so two processes upgrading a new file would both
    find no revision and both create tables; SQLite's own locks do not span the whole
    upgrade. An advisory ``flock`` on a file beside the database does (never on the database
    file itself: closing any descriptor of it would drop SQLite's own POSIX locks).
    """
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        yield
        return
    with open(f"{path}.migrate-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _upgrade(engine: Engine, where: str, target: str, attempts: int) -> str:
    for attempt in range(attempts):
        try:
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # One migrator at a time per database; the others wait here, then find
                    # the new revision. (SQLite: a file lock, see _sqlite_file_lock.)
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
                found = current(conn)
                if found == target:
                    return target
                if found is not None and found not in known_revisions():
                    raise StoreError(
                        f"the store at {where} has schema revision {found}, newer than this "
                        f"traderunner knows (newest: {target}): upgrade traderunner on this "
                        "machine (pip install -U traderunner) before using this store"
                    )
                cfg = _config(conn)
                if found is None and _is_legacy(conn):
                    command.stamp(cfg, BASELINE)
                command.upgrade(cfg, "head")
                _record_created_at(conn)
            return target
        except SQLAlchemyError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))
    return target
