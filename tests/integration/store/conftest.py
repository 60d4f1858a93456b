"""Fixtures for the store tests: one real store per test, on SQLite and on PostgreSQL.

The PostgreSQL server is the one at ``TRADERUNNER_TEST_PG_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``). Each test gets its own schema (set as
the connection's ``search_path``), dropped afterwards, so parallel runs never collide. An
unreachable server fails those tests on purpose: they exist to test the PostgreSQL store.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from traderunner.store import Store, normalize_url

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_base_url() -> sa.URL:
    return normalize_url(os.environ.get("TRADERUNNER_TEST_PG_URL") or DEFAULT_PG_URL)


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A URL whose connections use a fresh, empty PostgreSQL schema (dropped afterwards)."""
    base = pg_base_url()
    admin = sa.create_engine(base)
    schema = f"tr_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL is unreachable at {base.render_as_string(hide_password=True)} "
            f"({str(exc.orig).strip().splitlines()[0]}): start PostgreSQL or set "
            "TRADERUNNER_TEST_PG_URL to a server these tests may use",
            pytrace=False,
        )
    url = base.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store: a SQLite file in tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        (tmp_path / "store").mkdir()
        return f"sqlite:///{tmp_path / 'store' / 'traderunner.db'}"
    url: str = request.getfixturevalue("pg_schema_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A connected, empty store (closed afterwards)."""
    connected = Store.connect(store_url)
    try:
        yield connected
    finally:
        connected.close()
