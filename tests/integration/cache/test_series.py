"""Candle series: the store's bars, sliced from one cached binary value keyed by the generation."""

from __future__ import annotations

import json
import pickle

import pytest
import redis

from tests.integration.cache.helpers import CandleQueries
from tests.integration.store.store_helpers import assert_same_bars, make_candles
from traderunner.cache import MarketCache
from traderunner.domain import Timeframe
from traderunner.errors import DataRangeError
from traderunner.store import Store

M5 = Timeframe.M5


def test_series_is_the_stored_series_and_is_loaded_once(
    cache: MarketCache, store: Store, queries: CandleQueries
) -> None:
    want = store.candles.load("AAA", M5)
    queries.reset()
    for _ in range(3):
        got = cache.series("AAA", M5)
        assert_same_bars(got, want)
        assert got.source == want.source and got.meta == want.meta and got.timeframe is M5
        assert got.close.flags.writeable and got.close.flags.aligned
    assert queries.count == 1
    series = cache.stats().kinds["series"]
    # The first read fills Redis and the copy held in process; the others are that copy.
    assert series["misses"] == 1 and series["local_hits"] == 2 and series["store_loads"] == 1
    assert series["hits"] == 0


@pytest.mark.parametrize(("lo", "hi"), [(0, 10), (100, 1500), (1999, 1999), (None, 30), (5, None)])
def test_ranges_are_sliced_from_the_one_cached_series(
    cache: MarketCache, store: Store, queries: CandleQueries, lo: int | None, hi: int | None
) -> None:
    full = store.candles.load("BBB", M5)
    start = None if lo is None else int(full.ts[lo])
    end = None if hi is None else int(full.ts[hi])
    cache.series("BBB", M5)  # warm
    queries.reset()
    got = cache.series("BBB", M5, start, end)
    assert_same_bars(got, store.candles.load("BBB", M5, start, end))
    assert queries.count == 1  # the comparison's load above; the cache read none


def test_bounds_between_bars_match_the_store(cache: MarketCache, store: Store) -> None:
    full = store.candles.load("AAA", M5)
    start, end = int(full.ts[10]) + 1, int(full.ts[20]) - 1
    assert_same_bars(cache.series("AAA", M5, start, end), store.candles.load("AAA", M5, start, end))


def test_a_rewrite_makes_a_new_generation_and_a_new_key(
    cache: MarketCache, store: Store, queries: CandleQueries, raw: redis.Redis
) -> None:
    before = cache.series("AAA", M5)
    old_key = cache.keys.candle_series("AAA", "M5", before.meta["generation"])
    assert raw.exists(old_key)
    # New values for bars 10..19: stored bars change, so the generation does.
    changed = make_candles(10, "AAA", start=int(before.ts[10]) // 10**9, price=7.0, seed=5)
    write = store.candles.upsert(changed)
    assert write.kind == "rewrite"
    queries.reset()
    after = cache.series("AAA", M5)
    assert after.meta == {
        "version": before.meta["version"] + 1,
        "generation": write.series.generation,
    }  # type: ignore[union-attr]
    assert after.meta["generation"] != before.meta["generation"]
    assert_same_bars(after.slice(10, 20), changed)
    assert_same_bars(after, store.candles.load("AAA", M5))
    assert queries.count == 2  # the whole series once (a miss), and the comparison
    assert raw.exists(cache.keys.candle_series("AAA", "M5", after.meta["generation"]))
    assert 0 < raw.ttl(old_key) <= cache.series_ttl  # the old generation just expires
    # The bars handed out before are what they were: nothing mutated them.
    assert float(before.close[10]) != float(after.close[10])


def test_the_value_is_compact_binary_rows(cache: MarketCache, raw: redis.Redis) -> None:
    got = cache.series("AAA", M5)
    value = raw.get(cache.keys.candle_series("AAA", "M5", got.meta["generation"]))
    assert value is not None
    assert value[:4] == b"TRS\x02"
    assert len(value) == 16 + 48 * len(got)  # a 16-byte header and one 48-byte row a bar
    first_row = value[16:64]
    assert first_row[:8] == got.ts[:1].tobytes() and first_row[8:16] == got.open[:1].tobytes()
    assert value[-8:] == got.volume[-1:].tobytes()
    with pytest.raises((UnicodeDecodeError, json.JSONDecodeError)):
        json.loads(value)
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(value)  # proving it is not a pickle


def test_errors_are_the_stores_errors(cache: MarketCache, store: Store) -> None:
    full = store.candles.load("AAA", M5)
    with pytest.raises(DataRangeError, match="no M5 candles for 'NOPE'"):
        cache.series("NOPE", M5)
    with pytest.raises(DataRangeError, match="after end"):
        cache.series("AAA", M5, int(full.ts[5]), int(full.ts[1]))
    with pytest.raises(DataRangeError, match="choose a period inside it"):
        cache.series("AAA", M5, int(full.ts[-1]) + 10**9)
    with pytest.raises(DataRangeError, match="choose a period inside it"):
        store.candles.load("AAA", M5, int(full.ts[-1]) + 10**9)
