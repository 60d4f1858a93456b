"""A cache failure never fails a read: server down, flushed or evicted keys, garbage, wrong type.

Each test runs against a private Valkey pair it may stop, flush or squeeze.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.integration.cache.helpers import CandleQueries
from tests.integration.store.store_helpers import assert_same_bars, make_candles
from tests.redishelpers import RedisPair, start_pair
from traderunner.cache import MarketCache
from traderunner.config import Settings
from traderunner.domain import Timeframe
from traderunner.redisdb.connection import connect
from traderunner.redisdb.keys import Keys
from traderunner.store import Store

M5 = Timeframe.M5
LOGGER = "traderunner.cache"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[RedisPair]:
    private = start_pair(tmp_path / "valkey")
    try:
        yield private
    finally:
        private.cache.stop()
        private.durable.stop()


@pytest.fixture
def env(pair: RedisPair, tmp_path: Path) -> Iterator[tuple[Settings, Store, redis.Redis]]:
    settings = pair.settings(tmp_path / "data", store_url=f"sqlite:///{tmp_path / 'store.db'}")
    store = Store.connect(settings.resolved_store_url)
    store.candles.upsert(make_candles(500, "AAA", seed=3))
    client = connect(settings.cache_url, decode=False)
    try:
        yield settings, store, client
    finally:
        client.close()
        store.close()


def _warnings(caplog: pytest.LogCaptureFixture, word: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and r.levelno >= logging.WARNING and word in r.getMessage()
    ]


def _eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def _answers(cache: MarketCache, store: Store) -> None:
    """Every read is right, whatever the cache is going through."""
    bars = store.candles.last("AAA", M5)
    assert bars is not None
    assert cache.latest("AAA", M5) == bars.last()
    assert_same_bars(cache.series("AAA", M5), store.candles.load("AAA", M5))
    assert cache.latest("NOPE", M5) is None


def test_server_down_falls_back_to_the_store_and_logs_once(
    env: tuple[Settings, Store, redis.Redis], pair: RedisPair, caplog: pytest.LogCaptureFixture
) -> None:
    settings, store, _ = env
    caplog.set_level(logging.INFO, logger=LOGGER)
    cache = MarketCache.from_settings(settings, store)
    try:
        assert cache.local_ready(10)
        cache.put_strategy_config("sma", {"fast": 5})
        _answers(cache, store)
        pair.cache.stop()
        assert _eventually(lambda: not cache.local_active), "the tier kept serving while blind"
        for _ in range(3):
            _answers(cache, store)
            assert cache.strategy_config("sma") is None
            cache.put_latest(make_candles(2, "AAA", seed=4))  # a write fails quietly too
            time.sleep(0.6)  # past the skip window, so every round tries the server again
        assert len(_warnings(caplog, "unreachable")) == 1
        pair.cache.start()
        assert _eventually(lambda: cache.local_ready(0.1))
        _answers(cache, store)  # the restarted server is empty: misses, filled from the store
        _answers(cache, store)
        assert len(_warnings(caplog, "is over")) == 1
        assert cache.stats().kinds["latest"]["hits"] >= 1
    finally:
        cache.close()


def test_flushall_empties_the_local_tier_and_reads_refill(
    env: tuple[Settings, Store, redis.Redis],
) -> None:
    settings, store, client = env
    cache = MarketCache.from_settings(settings, store)
    queries = CandleQueries(store)
    try:
        assert cache.local_ready(10)
        _answers(cache, store)
        _answers(cache, store)
        assert cache.stats().local_entries >= 2
        client.flushall()
        assert _eventually(lambda: cache.stats().local_entries == 0)
        queries.reset()
        _answers(cache, store)
        # the two latest reads above refilled from the store (1 + 1), plus _answers' own two;
        # the series is the copy held in process, checked against the store's series row (a
        # FLUSHALL cannot make it wrong)
        assert queries.count == 4
        assert client.exists(cache.keys.latest_candle("AAA", "M5"))
    finally:
        cache.close()


def test_an_evicted_series_is_loaded_again(env: tuple[Settings, Store, redis.Redis]) -> None:
    settings, store, client = env
    # No copy held in process: every read goes to Redis.
    cache = MarketCache(
        connect(settings.cache_url, decode=False), Keys(settings.redis_prefix), store, held_bytes=0
    )
    queries = CandleQueries(store)
    try:
        first = cache.series("AAA", M5)
        key = cache.keys.candle_series("AAA", "M5", first.meta["generation"])
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory", str(used + 2 * 2**20))
        filler = b"x" * 65536
        for i in range(2000):  # allkeys-lru: new keys push the older ones out
            client.set(f"filler:{i}", filler)
            if i % 20 == 0 and not client.exists(key):
                break
        assert not client.exists(key), "the server never evicted the series"
        assert int(client.info("stats")["evicted_keys"]) > 0
        queries.reset()
        assert_same_bars(cache.series("AAA", M5), first)
        assert queries.count == 1
    finally:
        client.config_set("maxmemory", "64mb")
        cache.close()


def test_garbage_in_a_key_is_answered_from_the_store_and_repaired(
    env: tuple[Settings, Store, redis.Redis], caplog: pytest.LogCaptureFixture
) -> None:
    settings, store, client = env
    caplog.set_level(logging.INFO, logger=LOGGER)
    cache = MarketCache.from_settings(settings, store)
    try:
        info = store.candles.series("AAA", M5)
        assert info is not None
        latest_key = cache.keys.latest_candle("AAA", "M5")
        series_key = cache.keys.candle_series("AAA", "M5", info.generation)
        config_key = cache.keys.strategy_config("sma")
        for key, junk in (
            (latest_key, b"\x00garbage"),
            (series_key, b"TRS\x01" + b"\xff" * 40),
            (config_key, b"{not json"),
        ):
            client.set(key, junk, ex=60)
        for _ in range(3):
            _answers(cache, store)
            assert cache.strategy_config("sma") is None
        assert len(_warnings(caplog, "corrupt")) == 1
        assert client.get(latest_key)[:4] == b"TRC\x01"  # type: ignore[index]
        assert client.get(series_key)[:4] == b"TRS\x02"  # type: ignore[index]
        assert cache.stats().kinds["latest"]["errors"] >= 1
    finally:
        cache.close()


def test_a_key_of_the_wrong_type_is_answered_from_the_store_and_replaced(
    env: tuple[Settings, Store, redis.Redis], caplog: pytest.LogCaptureFixture
) -> None:
    settings, store, client = env
    caplog.set_level(logging.INFO, logger=LOGGER)
    cache = MarketCache.from_settings(settings, store)
    try:
        info = store.candles.series("AAA", M5)
        assert info is not None
        latest_key = cache.keys.latest_candle("AAA", "M5")
        series_key = cache.keys.candle_series("AAA", "M5", info.generation)
        client.hset(latest_key, "oops", "1")
        client.rpush(series_key, "oops")
        client.sadd(cache.keys.strategy_config("sma"), "oops")
        for _ in range(3):
            _answers(cache, store)
            assert cache.strategy_config("sma") is None
        assert len(_warnings(caplog, "wrongtype")) == 1
        assert client.type(latest_key) == b"string" and client.type(series_key) == b"string"
    finally:
        cache.close()
