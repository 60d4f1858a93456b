"""Appends extend the cached series instead of invalidating it; rewrites still invalidate.

Real Valkey, a real SQLite store, and readers in other threads and in another process while
bars are appended. Every read must return exactly the series at the version it reports.
"""

from __future__ import annotations

import multiprocessing
import threading
import zlib

import numpy as np
import redis

from tests.integration.cache.conftest import N_BARS
from tests.integration.cache.helpers import CandleQueries, series_reader_child
from tests.integration.store.store_helpers import NS, assert_same_bars, make_candles
from traderunner.cache import MarketCache
from traderunner.config import Settings
from traderunner.domain import CandleArrays, Timeframe
from traderunner.store import Store

M5 = Timeframe.M5


def next_bars(store: Store, n: int = 1, seed: int = 0, price: float = 100.0) -> CandleArrays:
    """``n`` bars right after the last stored bar of AAA."""
    info = store.candles.series("AAA", M5)
    assert info is not None
    return make_candles(n, "AAA", start=info.last_ns // NS + 300, seed=seed, price=price)


def test_append_extends_the_value_in_place_and_the_next_read_needs_no_store(
    cache: MarketCache, store: Store, queries: CandleQueries, raw: redis.Redis
) -> None:
    before = cache.series("AAA", M5)
    key = cache.keys.candle_series("AAA", "M5", before.meta["generation"])
    assert raw.strlen(key) == 16 + 48 * N_BARS
    bar = next_bars(store, seed=3)
    queries.reset()
    write = cache.append(bar)
    assert write.kind == "append" and write.series is not None
    assert write.series.generation == before.meta["generation"]
    assert raw.strlen(key) == 16 + 48 * (N_BARS + 1)  # 48 more bytes, the same key
    assert raw.ttl(key) > cache.series_ttl - 5  # refreshed by the append
    after = cache.series("AAA", M5)
    assert queries.count == 0  # no read of the candles table: the read used the copy held here
    assert len(after) == N_BARS + 1 and after.meta["version"] == before.meta["version"] + 1
    assert_same_bars(after.slice(N_BARS, N_BARS + 1), bar)
    assert_same_bars(after, store.candles.load("AAA", M5))
    assert len(before) == N_BARS  # what was handed out before did not grow or change
    latest = cache.latest("AAA", M5)
    assert latest is not None and latest.ts_ns == int(bar.ts[-1])


def test_bars_written_to_the_store_alone_are_read_from_the_store_once(
    cache: MarketCache, settings: Settings, store: Store, queries: CandleQueries, raw: redis.Redis
) -> None:
    """An import appends without the cache: the next reader reads only the new bars from the
    store and extends the Redis value, and a fresh reader then needs no store at all."""
    cache.series("AAA", M5)
    added = next_bars(store, n=5, seed=4)
    assert store.candles.upsert(added).kind == "append"
    queries.reset()
    got = cache.series("AAA", M5)
    assert len(got) == N_BARS + 5
    assert queries.count == 1
    assert "ts >" in queries.statements[0] or "ts >=" in queries.statements[0]  # only the tail
    key = cache.keys.candle_series("AAA", "M5", got.meta["generation"])
    assert raw.strlen(key) == 16 + 48 * (N_BARS + 5)
    stats = cache.stats().kinds["series"]
    assert stats["extends"] == 1 and stats["store_loads"] == 1  # the first fill only
    fresh = MarketCache.from_settings(settings, store)
    try:
        queries.reset()
        assert_same_bars(fresh.series("AAA", M5), got)
        assert queries.count == 0
    finally:
        fresh.close()


def test_another_process_reads_only_the_appended_bytes(
    cache: MarketCache, settings: Settings, store: Store
) -> None:
    cache.series("AAA", M5)
    counted = dict(cache.stats().kinds["series"])  # this process's, flushed
    ctx = multiprocessing.get_context("spawn")
    ready, results = ctx.Event(), ctx.Queue()
    start = store.candles.series("AAA", M5)
    assert start is not None
    appends = 20
    reader = ctx.Process(
        target=series_reader_child,
        args=(
            settings.resolved_store_url,
            settings.cache_url,
            settings.redis_prefix,
            "AAA",
            start.version + appends,
            ready,
            results,
        ),
    )
    reader.start()
    assert ready.wait(60)
    truth: dict[int, tuple[int, int]] = {}
    full = store.candles.load("AAA", M5)
    truth[start.version] = (len(full), zlib.crc32(full.close.tobytes()))
    closes = list(full.close)
    for i in range(appends):
        bar = next_bars(store, seed=100 + i)
        write = cache.append(bar)
        assert write.kind == "append" and write.series is not None
        closes.append(float(bar.close[0]))
        truth[write.series.version] = (len(closes), zlib.crc32(np.array(closes).tobytes()))
        threading.Event().wait(0.01)
    found = results.get(timeout=60)
    reader.join(30)
    assert found["errors"] == []
    assert found["seen"], "the reader read nothing"
    for version, n, crc in found["seen"]:
        assert truth[version] == (n, crc), f"version {version}: bars do not match"
    assert found["seen"][-1][0] == start.version + appends
    # It filled from Redis (one GET), then extended by GETRANGE. A read that came between an
    # append's store commit and its Redis APPEND read that bar from the store: a tail read.
    tails = found["statements"]
    assert len(tails) <= appends and all("ts >=" in sql for sql in tails), tails
    # The shared counts grew by the reader's alone (appends count nothing here).
    series = {w: n - counted.get(w, 0) for w, n in cache.stats().kinds["series"].items()}
    assert series["misses"] == 0 and series["store_loads"] == 0
    assert series["extends"] == len(tails)
    reads = len(found["seen"])
    assert series["local_hits"] + series["hits"] + series["extends"] == reads
    whole = 16 + 48 * N_BARS
    assert series["bytes_read"] <= whole + 48 * appends  # the value once, then 48 B a bar


def test_threads_reading_while_bars_are_appended_and_rewritten_see_exact_versions(
    cache: MarketCache, store: Store, raw: redis.Redis
) -> None:
    truth: dict[int, tuple[int, int]] = {}
    full = store.candles.load("AAA", M5)
    truth[int(full.meta["version"])] = (len(full), zlib.crc32(full.close.tobytes()))
    closes = np.array(full.close)
    done = threading.Event()
    seen: list[tuple[int, int, int]] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            while not done.is_set():
                got = cache.series("AAA", M5)
                seen.append((int(got.meta["version"]), len(got), zlib.crc32(got.close.tobytes())))
        except BaseException as exc:  # reported below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    generations = set()
    try:
        for i in range(40):
            if i % 10 == 9:  # a rewrite: new values for bar 5
                bar = make_candles(1, "AAA", start=int(full.ts[5]) // NS, price=1.0 + i)
                write = cache.append(bar)
                assert write.kind == "rewrite"
                closes[5] = bar.close[0]
            else:
                bar = next_bars(store, seed=200 + i)
                write = cache.append(bar)
                assert write.kind == "append"
                closes = np.append(closes, bar.close)
            assert write.series is not None
            generations.add(write.series.generation)
            truth[write.series.version] = (len(closes), zlib.crc32(closes.tobytes()))
            threading.Event().wait(0.005)
    finally:
        done.set()
        for t in readers:
            t.join(30)
    assert errors == []
    assert len(generations) == 5  # the first one and four rewrites
    assert len({v for v, _, _ in seen}) > 5, "the readers saw too few versions to tell"
    for version, n, crc in seen:
        assert truth[version] == (n, crc), f"version {version}: {n} bars do not match"
    # Every rewrite dropped the value of the generation before it.
    current = store.candles.series("AAA", M5)
    assert current is not None
    series_keys = {k for k in raw.scan_iter(match=cache.keys.candle_series("AAA", "M5", "*"))}
    assert series_keys == {cache.keys.candle_series("AAA", "M5", current.generation).encode()}
