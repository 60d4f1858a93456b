"""The cache in front of a PostgreSQL store (the many-machines set-up): same answers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.integration.cache.conftest import N_BARS
from tests.integration.store.store_helpers import assert_same_bars, make_candles
from tests.redishelpers import RedisPair
from traderunner.cache import MarketCache
from traderunner.domain import Timeframe
from traderunner.redisdb.connection import connect
from traderunner.redisdb.keys import Keys
from traderunner.store import Store, normalize_url

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_store() -> Iterator[Store]:
    """A store in a fresh PostgreSQL schema (dropped afterwards); unreachable = failure."""
    base = normalize_url(
        os.environ.get("TRADERUNNER_TEST_PG_URL")
        or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    admin = sa.create_engine(base)
    schema = f"tr_cache_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    store = Store.connect(base.update_query_dict({"options": f"-csearch_path={schema}"}))
    try:
        yield store
    finally:
        store.close()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


def test_latest_and_series_over_postgres(redis_pair: RedisPair, pg_store: Store) -> None:
    bars = make_candles(N_BARS, "PGA", seed=11)
    pg_store.candles.upsert(bars)
    last = pg_store.candles.last("PGA", Timeframe.M5)
    assert last is not None and last.meta["version"] == 1 and last.source == "test"
    assert last.last() == bars.last()
    assert pg_store.candles.last("NOPE", Timeframe.M5) is None
    cache = MarketCache(
        connect(redis_pair.cache.url, decode=False), Keys(f"p{uuid.uuid4().hex[:6]}:"), pg_store
    )
    try:
        assert cache.latest("PGA", Timeframe.M5) == last.last()
        for _ in range(2):
            assert_same_bars(cache.series("PGA", Timeframe.M5), bars)
        assert cache.stats().kinds["series"]["store_loads"] == 1
        # An append through the cache extends what it holds; a plain store write is read
        # back as a tail (a second cache sharing the Redis sees both, loading nothing whole).
        more = make_candles(3, "PGA", start=int(bars.ts[-1]) // 10**9 + 300, seed=12)
        assert cache.append(more.slice(0, 1)).kind == "append"
        assert pg_store.candles.upsert(more.slice(1, 3)).kind == "append"
        want = pg_store.candles.load("PGA", Timeframe.M5)
        assert len(want) == N_BARS + 3
        assert_same_bars(cache.series("PGA", Timeframe.M5), want)
        other = MarketCache(connect(redis_pair.cache.url, decode=False), cache.keys, pg_store)
        try:
            assert_same_bars(other.series("PGA", Timeframe.M5), want)
        finally:
            other.close()
        series = cache.stats().kinds["series"]
        assert series["store_loads"] == 1 and series["extends"] == 1
    finally:
        cache.close()
