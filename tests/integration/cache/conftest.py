"""Fixtures for the cache tests: real Valkey (the session pair), a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.integration.cache.helpers import CandleQueries
from tests.integration.store.store_helpers import make_candles
from tests.redishelpers import RedisPair
from traderunner.cache import MarketCache
from traderunner.config import Settings
from traderunner.redisdb.connection import connect
from traderunner.store import Store

N_BARS = 2000


@pytest.fixture
def settings(redis_pair: RedisPair, tmp_path: Path) -> Settings:
    """Settings on the session's Valkey pair with a fresh key prefix and SQLite store."""
    return redis_pair.settings(tmp_path / "data", store_url=f"sqlite:///{tmp_path / 'store.db'}")


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    """A store holding ``N_BARS`` M5 bars of AAA and BBB."""
    connected = Store.connect(settings.resolved_store_url)
    connected.candles.upsert(make_candles(N_BARS, "AAA", seed=1))
    connected.candles.upsert(make_candles(N_BARS, "BBB", seed=2, price=50.0))
    try:
        yield connected
    finally:
        connected.close()


@pytest.fixture
def queries(store: Store) -> CandleQueries:
    """Counts reads of the candles table from now on."""
    return CandleQueries(store)


@pytest.fixture
def cache(settings: Settings, store: Store) -> Iterator[MarketCache]:
    """A MarketCache with the in-process tier on, coherent before the test starts."""
    built = MarketCache.from_settings(settings, store)
    assert built.local_ready(10), "the tracking connection did not come up"
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def raw(settings: Settings) -> Iterator[redis.Redis]:
    """A plain byte client of the cache server, for poking at keys."""
    client = connect(settings.cache_url, decode=False)
    try:
        yield client
    finally:
        client.close()
