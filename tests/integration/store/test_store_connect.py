"""Store.connect: SQLite settings, PostgreSQL URLs, and one-line errors with masked passwords."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from traderunner.domain import Timeframe
from traderunner.errors import StoreError
from traderunner.store import Store, migrate, normalize_url

from .store_helpers import assert_same_bars, make_candles


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "traderunner.db"  # the folders do not exist yet
    with Store.connect(f"sqlite:///{path}", create_folder=True) as store:
        assert path.exists()
        assert store.dialect == "sqlite"
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    # WAL is a property of the file: a plain connection sees it too.
    raw = sa.create_engine(f"sqlite:///{path}")
    with raw.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    raw.dispose()


def test_connect_creates_the_tables_at_the_newest_revision(store: Store) -> None:
    names = set(sa.inspect(store.engine).get_table_names())
    assert {"candles", "series", "runs", "run_tables", "store_meta", "alembic_version"} <= names
    with store.engine.connect() as conn:
        assert migrate.current(conn) == migrate.head()
        created = conn.exec_driver_sql(
            "SELECT value FROM store_meta WHERE key = 'created_at'"
        ).scalar()
    assert created is not None and created.startswith("20")


def test_reconnecting_finds_the_data_again(store_url: str) -> None:
    bars = make_candles(40)
    with Store.connect(store_url) as first:
        first.candles.upsert(bars)
        first.runs.save_sweep(
            [{"fast": 3, "sharpe": 0.5}],
            owner="ana",
            strategy="macd",
            symbols=["AAPL"],
            timeframe="M5",
            grid={"fast": [3]},
            options={},
            run_id="kept",
        )
    with Store.connect(store_url) as second:
        assert_same_bars(second.candles.load("AAPL", Timeframe.M5), bars)
        assert second.runs.records("kept", "rows") == [{"fast": 3, "sharpe": 0.5}]


def test_two_writers_at_once_both_succeed(store: Store) -> None:
    errors: list[BaseException] = []

    def write(symbol: str) -> None:
        try:
            for i in range(8):
                store.candles.upsert(make_candles(200, symbol=symbol, seed=i))
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s,)) for s in ("AAPL", "MSFT")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {(s.symbol, s.version, s.count) for s in store.candles.list_series()} == {
        ("AAPL", 8, 200),
        ("MSFT", 8, 200),
    }


def test_postgresql_urls_are_rewritten_to_psycopg() -> None:
    assert normalize_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u:p@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql+psycopg://u:p@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"


def test_an_unreachable_server_is_one_line_with_the_password_masked() -> None:
    # Port 1 on localhost refuses connections at once.
    with pytest.raises(StoreError) as err:
        Store.connect("postgresql://trader:s3cr3t-pw@127.0.0.1:1/traderunner")
    message = str(err.value)
    assert "s3cr3t-pw" not in message
    assert "postgresql+psycopg://trader:***@127.0.0.1:1/traderunner" in message
    assert "check that the database server is running" in message
    assert "\n" not in message


def test_urls_that_are_not_database_urls_are_refused() -> None:
    with pytest.raises(StoreError, match="is not a database URL"):
        Store.connect("not a url")
    with pytest.raises(StoreError, match="check the URL scheme"):
        Store.connect("nosuchdb+driver://x/y")


def test_an_unwritable_sqlite_folder_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot create the folder"):
        Store.connect(f"sqlite:///{blocker / 'sub' / 'x.db'}", create_folder=True)


def test_a_store_url_into_a_missing_folder_is_refused_and_creates_nothing(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'typo' / 'traderunner.db'}"
    with pytest.raises(StoreError) as err:
        Store.connect(url)
    message = str(err.value)
    assert message.startswith(f"the folder {tmp_path / 'typo'} of the store {url} does not exist")
    assert "mkdir -p" in message and "TRADERUNNER_STORE_URL" in message and "\n" not in message
    assert not (tmp_path / "typo").exists()
    # A folder where a file should be is said so too.
    (tmp_path / "adir").mkdir()
    with pytest.raises(StoreError, match=r"names the folder .*adir, not a file"):
        Store.connect(f"sqlite:///{tmp_path / 'adir'}")


def test_the_default_store_in_the_data_dir_creates_its_folder(tmp_path: Path) -> None:
    from traderunner.config import Settings

    data_dir = tmp_path / "fresh" / "data"
    with Store.from_settings(Settings(data_dir=data_dir)) as store:
        assert store.dialect == "sqlite"
    assert (data_dir / "traderunner.db").is_file()
    given = Settings(data_dir=data_dir, store_url=f"sqlite:///{tmp_path / 'no' / 'x.db'}")
    with pytest.raises(StoreError, match="does not exist"):
        Store.from_settings(given)


def test_a_file_that_is_not_a_database_says_so(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    text = "these are my notes, not a database\n" * 100
    path.write_text(text)
    with pytest.raises(StoreError) as err:
        Store.connect(f"sqlite:///{path}")
    message = str(err.value)
    assert message.startswith(f"the store file {path} is not a SQLite database")
    assert "server is running" not in message and "\n" not in message
    assert "TRADERUNNER_STORE_URL" in message
    assert path.read_text() == text  # untouched


@pytest.mark.postgres
def test_a_plain_postgresql_url_works(pg_schema_url: str) -> None:
    plain = pg_schema_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with Store.connect(plain) as store:
        assert store.dialect == "postgresql"
        assert store.url.drivername == "postgresql+psycopg"
        store.candles.upsert(make_candles(3))
        assert len(store.candles.load("AAPL", Timeframe.M5)) == 3
