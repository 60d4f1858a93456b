"""Stampede protection: 200 concurrent cold reads of one key make exactly one store query.

The reads are threads in four real processes started at one instant (a barrier); each process
counts its own reads of the candles table at the sqlite3 driver, and the counts are summed.
"""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import pytest
import redis

from tests.integration.cache.helpers import CandleQueries, stampede_child
from traderunner.cache import MarketCache
from traderunner.config import Settings
from traderunner.domain import Timeframe
from traderunner.store import Store

PROCESSES = 4
THREADS = 50  # per process: 200 readers in all


def _stampede(settings: Settings, kind: str, symbol: str) -> list[dict[str, Any]]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=stampede_child,
            args=(
                settings.resolved_store_url,
                settings.cache_url,
                settings.redis_prefix,
                kind,
                symbol,
                THREADS,
                barrier,
                results,
            ),
        )
        for _ in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    try:
        out = [results.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    return out


@pytest.mark.parametrize("kind", ["latest", "series"])
def test_200_cold_readers_in_four_processes_cause_one_store_query(
    settings: Settings, store: Store, kind: str
) -> None:
    full = store.candles.load("AAA", Timeframe.M5)
    out = _stampede(settings, kind, "AAA")
    assert [o["errors"] for o in out] == [[]] * PROCESSES
    seen = {tuple(v) for o in out for v in o["seen"]}
    if kind == "latest":
        assert seen == {(int(full.ts[-1]), float(full.close[-1]))}
    else:
        assert seen == {(len(full), int(full.ts[-1]), float(full.close.sum()))}
    assert sum(o["queries"] for o in out) == 1, [o["queries"] for o in out]


def test_a_fill_lock_left_by_a_dead_loader_is_taken_over(
    cache: MarketCache, queries: CandleQueries, raw: redis.Redis, store: Store
) -> None:
    key = cache.keys.latest_candle("BBB", "M5")
    raw.set(cache.keys.cache_fill_lock(key), b"a-process-that-died", px=300)
    bars = store.candles.last("BBB", Timeframe.M5)
    assert bars is not None
    queries.reset()
    got: list[Any] = []
    readers = [
        threading.Thread(target=lambda: got.append(cache.latest("BBB", Timeframe.M5)))
        for _ in range(20)
    ]
    for t in readers:
        t.start()
    for t in readers:
        t.join(30)
    assert got == [bars.last()] * 20
    assert queries.count == 1  # one reader took the lock over once it expired
    assert not raw.exists(cache.keys.cache_fill_lock(key))
