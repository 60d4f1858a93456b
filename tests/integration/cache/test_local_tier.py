"""The in-process tier is coherent: another process's write is seen by the next reads.

The writer is a real second process (spawned) writing the latest candle through its own
MarketCache; the reader is this process reading through the in-process tier in a loop.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.integration.cache.helpers import writer_child
from tests.redishelpers import start_pair
from traderunner.cache import MarketCache
from traderunner.config import Settings
from traderunner.domain import Timeframe
from traderunner.store import Store

WRITES = 40


def test_another_process_write_reaches_the_local_tier(
    cache: MarketCache, settings: Settings, store: Store
) -> None:
    assert cache.latest("WWW", Timeframe.M5) is None  # nothing yet (a tombstone, held locally)
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    writer = ctx.Process(
        target=writer_child,
        args=(
            settings.cache_url,
            settings.resolved_store_url,
            settings.redis_prefix,
            "WWW",
            WRITES,
            0.02,
            ready,
        ),
    )
    writer.start()
    delays: dict[int, float] = {}
    last = 0
    reads = 0
    before = cache.stats().kinds["latest"]
    try:
        ready.set()
        deadline = time.monotonic() + 60
        while last < WRITES and time.monotonic() < deadline:
            bar = cache.latest("WWW", Timeframe.M5)
            reads += 1
            seq = 0 if bar is None else bar.ts_ns
            assert seq >= last, "a read went back to an older value"
            if seq > last:
                assert bar is not None
                delays[seq] = time.monotonic() - bar.open
                last = seq
    finally:
        writer.join(30)
    assert writer.exitcode == 0
    assert last == WRITES, f"the last write was never seen (saw {last})"
    after = cache.stats().kinds["latest"]
    local = after["local_hits"] - before["local_hits"]
    remote = after["hits"] + after["misses"] - before["hits"] - before["misses"]
    # Nearly every read is answered in process; Redis is asked about once per write.
    assert local > 10 * remote and remote >= len(delays)
    ms = sorted(d * 1000 for d in delays.values())
    print(
        f"\nseen {len(ms)}/{WRITES} writes; delay ms p50 {statistics.median(ms):.3f} "
        f"max {ms[-1]:.3f}; {reads} reads, {local} in process, {remote} from Redis"
    )


def test_a_config_written_elsewhere_replaces_the_local_copy(
    cache: MarketCache, settings: Settings, store: Store
) -> None:
    other = MarketCache.from_settings(settings, store)
    try:
        assert cache.strategy_config("sma") is None  # absent: held locally as absent
        other.put_strategy_config("sma", {"fast": 5, "slow": 20})
        seen = _poll(lambda: cache.strategy_config("sma"), {"fast": 5, "slow": 20})
        assert seen == {"fast": 5, "slow": 20}
        before = cache.stats().kinds["config"]["local_hits"]
        assert cache.strategy_config("sma") == seen
        assert cache.stats().kinds["config"]["local_hits"] == before + 1
        other.put_strategy_config("sma", {"fast": 8, "slow": 20})
        assert _poll(lambda: cache.strategy_config("sma"), {"fast": 8, "slow": 20}) == {
            "fast": 8,
            "slow": 20,
        }
    finally:
        other.close()


def _poll(read: Callable[[], Any], want: Any, timeout: float = 10.0) -> Any:
    """``read()`` until it returns ``want`` (or ``timeout``); returns the last value read."""
    deadline = time.monotonic() + timeout
    got = read()
    while got != want and time.monotonic() < deadline:
        time.sleep(0.001)
        got = read()
    return got


def test_the_tier_switches_off_while_tracking_is_down(tmp_path: Path) -> None:
    pair = start_pair(tmp_path / "valkey")
    try:
        settings = pair.settings(tmp_path / "data", store_url=f"sqlite:///{tmp_path / 's.db'}")
        store = Store.connect(settings.resolved_store_url)
        cache = MarketCache.from_settings(settings, store)
        try:
            assert cache.local_ready(10) and cache.local_active
            cache.put_strategy_config("x", {"a": 1})
            assert cache.strategy_config("x") == {"a": 1}
            pair.cache.stop()
            deadline = time.monotonic() + 10
            while cache.local_active and time.monotonic() < deadline:
                time.sleep(0.01)
            assert not cache.local_active
            assert cache.strategy_config("x") is None  # not a stale local copy
            pair.cache.start()
            assert cache.local_ready(10)
            cache.put_strategy_config("x", {"a": 2})
            assert cache.strategy_config("x") == {"a": 2}
        finally:
            cache.close()
            store.close()
    finally:
        pair.cache.stop()
        pair.durable.stop()
