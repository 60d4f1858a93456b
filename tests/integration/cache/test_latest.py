"""Latest candles: read-through, one-bar TTL, put_latest, tombstones, the in-process tier."""

from __future__ import annotations

import time

import numpy as np
import redis

from tests.integration.cache.helpers import CandleQueries
from tests.integration.store.store_helpers import make_candles
from traderunner.cache import MarketCache
from traderunner.cache.local import MISSING, LocalTier
from traderunner.config import Settings
from traderunner.domain import Candle, Timeframe
from traderunner.store import Store


def _store_last(store: Store, symbol: str) -> Candle:
    bars = store.candles.last(symbol, Timeframe.M5)
    assert bars is not None
    return bars.last()


def test_latest_reads_through_once_then_serves_from_the_cache(
    cache: MarketCache, store: Store, queries: CandleQueries, raw: redis.Redis
) -> None:
    want = _store_last(store, "AAA")
    loaded = store.candles.load("AAA", Timeframe.M5)
    assert want.ts_ns == int(loaded.ts[-1]) and want.close == float(loaded.close[-1])
    queries.reset()
    first = cache.latest("AAA", Timeframe.M5)
    assert first == want and first.source == "test" and first.symbol == "AAA"
    assert queries.count == 1
    for _ in range(50):
        assert cache.latest("AAA", Timeframe.M5) == want
    assert queries.count == 1
    key = cache.keys.latest_candle("AAA", "M5")
    ttl_ms = raw.pttl(key)
    assert 0 < ttl_ms <= Timeframe.M5.seconds * 1000
    stats = cache.stats()
    latest = stats.kinds["latest"]
    assert latest["misses"] == 1 and latest["store_loads"] == 1
    assert latest["hits"] + latest["local_hits"] == 50
    assert latest["local_hits"] > 0, "the in-process tier never answered"


def test_the_ttl_is_one_bar_of_the_timeframe(
    cache: MarketCache, store: Store, raw: redis.Redis
) -> None:
    daily = make_candles(30, "DDD", step=86400, timeframe=Timeframe.D1)
    store.candles.upsert(daily)
    got = cache.latest("DDD", Timeframe.D1)
    assert got is not None and got.ts_ns == int(daily.ts[-1])
    ttl_ms = raw.pttl(cache.keys.latest_candle("DDD", "D1"))
    assert Timeframe.M5.seconds * 1000 < ttl_ms <= Timeframe.D1.seconds * 1000


def test_put_latest_is_what_every_reader_sees(
    cache: MarketCache, settings: Settings, store: Store, queries: CandleQueries
) -> None:
    assert cache.latest("AAA", Timeframe.M5) == _store_last(store, "AAA")
    newer = make_candles(3, "AAA", start=1_900_000_000, seed=9)
    cache.put_latest(newer)
    other = MarketCache.from_settings(settings, store)
    try:
        queries.reset()
        assert other.latest("AAA", Timeframe.M5) == newer.last()
        assert queries.count == 0
    finally:
        other.close()
    assert cache.latest("AAA", Timeframe.M5) == newer.last()


def test_unknown_symbol_is_none_and_does_not_hammer_the_store(
    cache: MarketCache, queries: CandleQueries
) -> None:
    assert cache.latest("NOPE", Timeframe.M5) is None
    for _ in range(20):
        assert cache.latest("NOPE", Timeframe.M5) is None
    assert queries.count == 1


def test_without_the_local_tier_every_read_is_a_redis_hit(
    settings: Settings, store: Store, queries: CandleQueries
) -> None:
    want = _store_last(store, "BBB")
    plain = MarketCache.from_settings(settings.model_copy(update={"cache_local": False}), store)
    try:
        for _ in range(10):
            assert plain.latest("BBB", Timeframe.M5) == want
        stats = plain.stats()
        assert stats.kinds["latest"]["hits"] == 9 and stats.kinds["latest"]["local_hits"] == 0
        assert not stats.local_active and stats.local_entries == 0
    finally:
        plain.close()
    assert queries.count == 2  # the cache's one load and _store_last's


def test_a_local_entry_dies_with_its_redis_ttl(
    cache: MarketCache, raw: redis.Redis, store: Store
) -> None:
    key = cache.keys.latest_candle("AAA", "M5")
    want = cache.latest("AAA", Timeframe.M5)
    raw.pexpire(key, 300)
    deadline = time.monotonic() + 10
    while raw.exists(key) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not raw.exists(key)
    assert cache.latest("AAA", Timeframe.M5) == want  # from the store again, and re-cached
    assert raw.exists(key)


def test_local_tier_expiry_refuses_stale_fills_and_bounds_memory() -> None:
    tier = LocalTier(max_entries=3)
    tier.set_active(True)
    token = tier.begin()
    assert tier.fill("a", 1, 50, token)
    assert tier.get("a") == 1
    time.sleep(0.08)
    assert tier.get("a") is MISSING, "an entry outlived its Redis TTL"
    token = tier.begin()
    tier.invalidate(["b"])  # a write lands between our GET and our fill
    assert not tier.fill("b", "old", 10_000, token)
    assert tier.fill("c", "fresh", 10_000, token)
    token = tier.begin()
    for key in "defg":
        tier.fill(key, key, 10_000, token)
    assert len(tier) == 3 and tier.get("c") is MISSING
    tier.set_active(False)
    assert tier.get("g") is MISSING and not tier.fill("g", 1, 1000, tier.begin())


def test_candle_arrays_last_matches_the_columns() -> None:
    bars = make_candles(5, "ZZZ")
    bar = bars.last()
    assert bar.ts_ns == int(bars.ts[-1]) and bar.high == float(bars.high[-1])
    assert isinstance(bar.ts_ns, int) and not isinstance(bar.close, np.floating)
