"""The store: one SQLAlchemy engine and the repositories that use it.

``Store.connect(url)`` accepts any SQLAlchemy URL. Two are first-class:

* SQLite (the single-machine default), e.g. ``sqlite:////home/me/.local/share/traderunner/
  traderunner.db``: every connection runs in WAL journal mode with ``synchronous=NORMAL``,
  foreign keys on and a busy timeout, so readers never block the writer and a second writer
  waits instead of failing at once. The file is created when missing, its folder only when
  asked (``create_folder=True``, what :meth:`Store.from_settings` does for the default store
  in the data directory): a URL naming a folder that does not exist is a typo, not a request
  for a new empty store. A file that is not a SQLite database is refused as such.
* PostgreSQL through psycopg 3: ``postgresql+psycopg://user:pass@host/db``; a bare
  ``postgresql://`` (or ``postgres://``) URL is rewritten to use psycopg.

Connecting brings the schema to the code's revision (Alembic migrations, see
:mod:`~traderunner.store.migrate`): a new database gets every table, an older one is upgraded,
one written by a newer traderunner is refused. Every failure of the database surfaces as a
one-line :class:`~traderunner.errors.StoreError` whose URL has its password masked.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, SQLAlchemyError

from traderunner.errors import DataRangeError, StoreError
from traderunner.store import migrate

if TYPE_CHECKING:
    from traderunner.config import Settings

# How long a SQLite writer waits for another writer's lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 10_000


def normalize_url(url: str | URL) -> URL:
    """Parse ``url``; ``postgresql://`` and ``postgres://`` become ``postgresql+psycopg://``."""
    try:
        parsed = sa.make_url(url) if isinstance(url, str) else url
    except (ArgumentError, ValueError) as exc:
        raise StoreError(
            f"store URL {str(url)!r} is not a database URL ({_first_line(exc)}): use e.g. "
            "sqlite:///path/to/traderunner.db or postgresql+psycopg://user:pass@host/db"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def mask_url(url: URL) -> str:
    """The URL as text with its password replaced by ``***``."""
    return url.render_as_string(hide_password=True)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


class Store:
    """The system of record. Build it with :meth:`connect`; close it with :meth:`close`.

    ``candles`` (:class:`~traderunner.store.candles.CandleRepository`), ``runs``
    (:class:`~traderunner.store.runs.RunRepository`: saved backtests and sweeps), ``jobs``
    (:class:`~traderunner.store.jobs.JobRepository`) and ``users``
    (:class:`~traderunner.store.users.UserRepository`), ``adjusted``
    (:class:`~traderunner.store.adjusted.AdjustedCloseRepository`: EODHD's adjusted closes of
    daily bars), ``live`` (live strategies and the stream's state,
    :class:`~traderunner.store.live.LiveRepository`) and ``trading`` (the paper trader's
    record, :class:`~traderunner.store.trading.TradingRepository`) are the repositories. A
    Store is
    safe to share between threads (the engine pools connections); each repository call is
    its own transaction.
    """

    def __init__(self, engine: Engine, url: URL) -> None:
        from traderunner.store.adjusted import AdjustedCloseRepository
        from traderunner.store.candles import CandleRepository
        from traderunner.store.jobs import JobRepository
        from traderunner.store.live import LiveRepository
        from traderunner.store.runs import RunRepository
        from traderunner.store.trading import TradingRepository
        from traderunner.store.users import UserRepository

        self.engine = engine
        self.url = url
        self.candles = CandleRepository(self)
        self.runs = RunRepository(self)
        self.jobs = JobRepository(self)
        self.users = UserRepository(self)
        self.adjusted = AdjustedCloseRepository(self)
        self.live = LiveRepository(self)
        self.trading = TradingRepository(self)

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        """The configured store: ``TRADERUNNER_STORE_URL``, else the SQLite file in the data
        directory (whose folder is then created; a URL the user gave is taken as it is)."""
        return cls.connect(settings.resolved_store_url, create_folder=not settings.store_url)

    @classmethod
    def connect(cls, url: str | URL, *, create_folder: bool = False, **engine_kwargs: Any) -> Store:
        """Open the store at ``url`` and migrate it to the code's schema; StoreError if that fails.

        ``create_folder``: create a SQLite file's missing parent folder (otherwise a missing
        folder is refused). ``engine_kwargs`` go to :func:`sqlalchemy.create_engine` (pool
        sizes, echo ...).
        """
        parsed = normalize_url(url)
        where = mask_url(parsed)
        is_sqlite = parsed.get_backend_name() == "sqlite"
        if is_sqlite:
            _check_sqlite_file(parsed, where, create_folder)
        try:
            engine = sa.create_engine(parsed, **engine_kwargs)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise StoreError(
                f"cannot use the store URL {where}: {_first_line(exc)}; check the URL scheme "
                "(sqlite:/// or postgresql+psycopg://) and that its driver is installed "
                "(pip install 'traderunner[postgres]' for PostgreSQL)"
            ) from None
        if is_sqlite:
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        try:
            _first_connect(engine, is_sqlite)
        except (SQLAlchemyError, sqlite3.Error) as exc:
            engine.dispose()
            if is_sqlite:
                raise _sqlite_refused(parsed, where, exc) from None
            raise StoreError(
                f"cannot connect to the store at {where}: {_scrub(_first_line(exc), parsed)}; "
                "check that the database server is running and reachable, and the URL "
                "(TRADERUNNER_STORE_URL), user and password"
            ) from None
        try:
            migrate.upgrade(engine, where)
        except StoreError:
            engine.dispose()
            raise
        except (SQLAlchemyError, sqlite3.Error, OSError) as exc:
            engine.dispose()
            raise StoreError(
                f"cannot create or upgrade the tables of the store at {where}: "
                f"{_scrub(_first_line(exc), parsed)}; check that the user may create tables "
                "and the disk is writable"
            ) from None
        return cls(engine, parsed)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql`` (or another SQLAlchemy backend name)."""
        return self.engine.dialect.name

    def close(self) -> None:
        """Close every pooled connection. The Store must not be used afterwards."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({mask_url(self.url)!r})"

    @contextmanager
    def transaction(
        self, action: str, *, refused_hint: str | None = None, snapshot: bool = False
    ) -> Iterator[Connection]:
        """One transaction; any database failure becomes a one-line error naming ``action``.

        With ``refused_hint``, a violated constraint (the data was bad, not the database)
        becomes DataRangeError ending in that hint; every other failure is StoreError.
        Either way the transaction is rolled back: nothing of it is written.

        ``snapshot=True`` is for reads that must agree with each other: every statement sees
        the same committed state (PostgreSQL ``REPEATABLE READ``; on SQLite an explicit
        ``BEGIN``, since the driver otherwise runs each SELECT on its own snapshot).
        """
        dbapi = self.engine.dialect.dbapi
        # Raw driver cursors (COPY, bulk fetches) raise the driver's own PEP 249 errors.
        driver_error = getattr(dbapi, "Error", sqlite3.Error)
        driver_integrity = getattr(dbapi, "IntegrityError", sqlite3.IntegrityError)
        try:
            with self.engine.begin() as conn:
                if snapshot:
                    if conn.dialect.name == "postgresql":
                        conn.exec_driver_sql(
                            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
                        )
                    elif conn.dialect.name == "sqlite":
                        conn.exec_driver_sql("BEGIN")
                yield conn
        except (IntegrityError, driver_integrity) as exc:
            if refused_hint is None:
                raise self._failed(action, exc) from None
            raise DataRangeError(
                f"the store refused to {action}: {_first_line(exc)}; {refused_hint}"
            ) from None
        except (SQLAlchemyError, sqlite3.Error, driver_error) as exc:
            raise self._failed(action, exc) from None

    def _failed(self, action: str, exc: BaseException) -> StoreError:
        return StoreError(
            f"the store at {mask_url(self.url)} failed to {action}: "
            f"{_scrub(_first_line(exc), self.url)}; check the database server and its disk"
        )


def _first_connect(engine: Engine, is_sqlite: bool, attempts: int = 8) -> None:
    """Open one connection. On SQLite, ``PRAGMA journal_mode = WAL`` can answer "database is
    locked" at once (no busy wait) while another process migrates a new store: try again."""
    for attempt in range(attempts):
        try:
            with engine.connect():
                return
        except (SQLAlchemyError, sqlite3.Error) as exc:
            locked = is_sqlite and "database is locked" in str(exc)
            if not locked or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def _sqlite_path(url: URL) -> Path | None:
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def _check_sqlite_file(url: URL, where: str, create_folder: bool) -> None:
    """Refuse, before SQLite quietly creates a new empty file, a path that cannot be a store."""
    path = _sqlite_path(url)
    if path is None:
        return
    folder = path.parent
    if path.is_dir():
        raise StoreError(
            f"the store {where} names the folder {path}, not a file: add a file name, e.g. "
            f"sqlite:///{path / 'traderunner.db'} (TRADERUNNER_STORE_URL)"
        )
    if folder.is_dir():
        return
    if not create_folder:
        what = "is not a folder" if folder.exists() else "does not exist"
        raise StoreError(
            f"the folder {folder} of the store {where} {what}: create it (mkdir -p {folder}) "
            "or fix TRADERUNNER_STORE_URL"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the folder {folder} for the store {where}: {exc.strerror}; "
            "choose a writable location (TRADERUNNER_DATA_DIR or TRADERUNNER_STORE_URL)"
        ) from None


def _sqlite_refused(url: URL, where: str, exc: BaseException) -> StoreError:
    """A SQLite file that could not be opened, said the way its owner can fix it."""
    detail = _first_line(exc)
    path = _sqlite_path(url)
    if "not a database" in detail or "malformed" in detail:
        return StoreError(
            f"the store file {path or where} is not a SQLite database ({detail}): point "
            "TRADERUNNER_STORE_URL at a traderunner store, or move that file away to start a "
            "new one"
        )
    return StoreError(
        f"cannot open the SQLite store {where}: {detail}; check that the file and its folder "
        "are readable and writable by this user (TRADERUNNER_STORE_URL)"
    )


def _scrub(text: str, url: URL) -> str:
    # Driver messages rarely echo the password, but a DSN in an error must never leak it.
    return text.replace(url.password, "***") if url.password else text
