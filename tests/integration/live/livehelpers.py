"""The live path in this process for tests: a stream service and a trader on real Valkey and a
real SQLite store, and what a backtest of the same thing says."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tests.redishelpers import RedisPair
from traderunner.bus import BusOptions, Publisher
from traderunner.cache import MarketCache
from traderunner.config import Settings
from traderunner.domain.candles import Candle, CandleArrays
from traderunner.domain.live import LiveStrategy
from traderunner.domain.timeframe import Timeframe
from traderunner.redisdb.connection import connect
from traderunner.redisdb.keys import Keys
from traderunner.signals import StreamService
from traderunner.store import Store
from traderunner.trader import KillSwitch, Notifier, RiskChecks, RiskLimits, TraderService


def bars_of(series: Sequence[CandleArrays]) -> list[Candle]:
    """Every bar of ``series`` as Candles in time order (symbols interleaved), as a replay
    hands them out."""
    out = []
    for c in series:
        for i in range(len(c)):
            out.append(
                Candle(
                    int(c.ts[i]),
                    float(c.open[i]),
                    float(c.high[i]),
                    float(c.low[i]),
                    float(c.close[i]),
                    float(c.volume[i]),
                    symbol=c.symbol,
                    timeframe=c.timeframe,
                    source=c.source,
                )
            )
    out.sort(key=lambda b: (b.ts_ns, b.symbol))
    return out


@dataclass
class Live:
    settings: Settings
    store: Store
    keys: Keys
    stream: StreamService
    trader: TraderService
    cache: MarketCache

    def add(self, live: LiveStrategy) -> None:
        assert self.store.live.add(live) is not None

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Until the trader has handled everything published (and stepped every bar)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.trader.idle():
                time.sleep(0.05)
                if self.trader.idle():
                    return
            assert time.monotonic() < deadline, "the trader did not catch up"
            time.sleep(0.05)


@contextmanager
def live_env(
    pair: RedisPair,
    root: Path,
    *,
    limits: RiskLimits | None = None,
    replay: bool = True,
    **overrides: Any,
) -> Iterator[Live]:
    root.mkdir(parents=True, exist_ok=True)
    settings = pair.settings(root / "data", store_url=f"sqlite:///{root / 'store.db'}", **overrides)
    keys = Keys(settings.redis_prefix)
    store = Store.connect(settings.resolved_store_url)
    durable = connect(pair.durable.url, name="test-live")
    cache_client = connect(pair.cache.url, name="test-live-cache")
    cache = MarketCache(cache_client, keys, store, local=False)
    options = BusOptions(block=0.05, claim_idle=5.0)
    stream = StreamService(cache, Publisher(durable, keys, options), refresh=0.0, replay=replay)
    risk = RiskChecks(limits or RiskLimits(), KillSwitch(durable, keys))
    trader = TraderService(
        store,
        durable,
        keys,
        risk,
        cache=cache_client,
        notifier=Notifier.from_settings(settings),
        options=options,
        signal_wait=10.0,
        refresh=0.0,
    )
    env = Live(settings, store, keys, stream, trader, cache)
    try:
        yield env
    finally:
        trader.stop()
        trader.close()
        cache.close()
        durable.close()
        cache_client.close()
        store.close()


def backtest_fills(result: Any, symbol: str) -> list[tuple[int, str, float, float]]:
    """A backtest's fills of ``symbol`` as (time ns, side, units, price)."""
    frame = result.symbols[symbol].fills
    times = frame["time"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return [
        (int(t), str(s), float(u), float(p))
        for t, s, u, p in zip(times, frame["side"], frame["size"], frame["price"], strict=True)
    ]


TF = Timeframe.M5
