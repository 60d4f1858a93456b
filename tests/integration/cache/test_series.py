"""Candle series: the store's bars, sliced from one cached binary value keyed by the version."""

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
    assert series["misses"] == 1 and series["hits"] == 2 and series["store_loads"] == 1


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


def test_an_import_makes_a_new_version_and_a_new_key(
    cache: MarketCache, store: Store, queries: CandleQueries, raw: redis.Redis
) -> None:
    before = cache.series("AAA", M5)
    old_key = cache.keys.candle_series("AAA", "M5", before.meta["version"])
    assert raw.exists(old_key)
    extra = make_candles(10, "AAA", start=int(before.ts[-1]) // 10**9 + 300, seed=5)
    store.candles.upsert(extra)
    queries.reset()
    after = cache.series("AAA", M5)
    assert len(after) == len(before) + 10 and after.meta["version"] == before.meta["version"] + 1
    assert_same_bars(after.slice(len(before), len(after)), extra)
    assert queries.count == 1
    assert raw.exists(cache.keys.candle_series("AAA", "M5", after.meta["version"]))
    assert 0 < raw.ttl(old_key) <= cache.series_ttl  # the old version just expires


def test_the_value_is_compact_binary_columns(cache: MarketCache, raw: redis.Redis) -> None:
    got = cache.series("AAA", M5)
    value = raw.get(cache.keys.candle_series("AAA", "M5", got.meta["version"]))
    assert value is not None
    assert value[:4] == b"TRS\x01"
    assert len(value) - 48 * len(got) < 64  # six 8-byte columns and a small header
    assert got.ts.tobytes() in value and got.volume.tobytes() in value
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
