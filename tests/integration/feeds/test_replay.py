"""ReplayFeed over a real SQLite store: the Feed contract (order, once, end, close, speed)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from traderunner.domain.candles import Candle
from traderunner.domain.feeds import Feed
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import DataRangeError
from traderunner.marketdata import synthetic_candles
from traderunner.marketdata.feeds import ReplayFeed
from traderunner.store import Store

START, END = datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 6, 23, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.connect(f"sqlite:///{tmp_path / 'store.db'}")
    for symbol in ("AAPL.US", "TSLA.US"):
        s.candles.upsert(synthetic_candles(symbol, Timeframe.M5, START, END))
    yield s
    s.close()


async def collect(feed: Feed, limit: int | None = None) -> list[Candle]:
    out: list[Candle] = []
    async for candle in feed:
        out.append(candle)
        if limit is not None and len(out) >= limit:
            await feed.aclose()
    return out


def test_a_replay_yields_every_stored_bar_once_in_time_then_symbol_order_and_ends(
    store: Store,
) -> None:
    feed = ReplayFeed.from_store(store, ["TSLA.US", "AAPL.US"], "M5")
    assert isinstance(feed, Feed) and feed.symbols == ("TSLA.US", "AAPL.US")
    bars = asyncio.run(collect(feed))  # returns: the end of a replay ends the loop
    stored = {s: store.candles.load(s, Timeframe.M5) for s in feed.symbols}
    assert len(bars) == sum(len(c) for c in stored.values())
    assert [(b.ts_ns, feed.symbols.index(b.symbol)) for b in bars] == sorted(
        (b.ts_ns, feed.symbols.index(b.symbol)) for b in bars
    )
    aapl = [b for b in bars if b.symbol == "AAPL.US"]
    assert [b.ts_ns for b in aapl] == stored["AAPL.US"].ts.tolist()
    assert [b.close for b in aapl] == stored["AAPL.US"].close.tolist()
    assert {(b.timeframe, b.source) for b in bars} == {(Timeframe.M5, "synthetic")}
    with pytest.raises(RuntimeError, match="iterated once"):
        feed.__aiter__()


def test_from_and_to_bound_the_replay_and_an_unknown_symbol_is_named(store: Store) -> None:
    lo = int(datetime(2024, 3, 5, 15, tzinfo=UTC).timestamp()) * 10**9
    hi = int(datetime(2024, 3, 5, 16, tzinfo=UTC).timestamp()) * 10**9
    feed = ReplayFeed.from_store(store, ["AAPL.US"], "M5", start_ns=lo, end_ns=hi)
    bars = asyncio.run(collect(feed))
    assert [b.ts_ns for b in bars] == list(range(lo, hi + 1, 300 * 10**9))
    with pytest.raises(DataRangeError, match=r"NOPE\.US"):
        ReplayFeed.from_store(store, ["NOPE.US"], "M5")


def test_speed_waits_market_time_over_speed_and_aclose_stops_a_wait(store: Store) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    feed = ReplayFeed.from_store(
        store, ["AAPL.US", "TSLA.US"], "M5", speed=60, max_sleep=10.0, sleep=sleep
    )
    bars = asyncio.run(collect(feed))
    times = sorted({b.ts_ns for b in bars})
    assert len(waits) == len(times) - 1  # one wait per new open time, none between symbols
    assert waits[0] == pytest.approx(5.0) and max(waits) == 10.0  # 300 s / 60; overnight capped

    async def closes_mid_wait() -> list[Candle]:
        feed = ReplayFeed.from_store(store, ["AAPL.US"], "M5", speed=1e-6)  # waits for ages
        got: list[Candle] = []

        async def consume() -> None:
            async for candle in feed:
                got.append(candle)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        await feed.aclose()
        await asyncio.wait_for(task, 2)  # the iteration ended: aclose stopped the wait
        return got

    assert len(asyncio.run(closes_mid_wait())) == 1
