"""PollingFeed against the fake EODHD server: one request per symbol per final bar."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from tests.integration.eodhd.conftest import TOKEN
from tests.integration.eodhd.fake_eodhd import NO_DATA, Canned, FakeEodhd, expected_bars
from tests.redishelpers import RedisPair
from traderunner.domain.candles import Candle
from traderunner.domain.feeds import Feed
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import ProviderAuthError
from traderunner.marketdata.feeds import PollingFeed
from traderunner.marketdata.providers.eodhd import EodhdProvider
from traderunner.ratelimit import Quota, RateLimiter

NS = 1_000_000_000
OPEN = datetime(2024, 3, 4, 14, 30, tzinfo=UTC).timestamp()


class Clock:
    """Time that moves only when the feed sleeps (so a test of minutes takes milliseconds)."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def take(feed: Feed, n: int) -> list[Candle]:
    out: list[Candle] = []
    async for candle in feed:
        out.append(candle)
        if len(out) == n:
            await feed.aclose()
    return out


def test_each_final_bar_is_asked_once_per_symbol_through_the_limiter(
    fake: FakeEodhd, redis_pair: RedisPair
) -> None:
    quotas = [Quota(1000, 60, "minute", unit="requests"), Quota(100_000, 86_400, "day")]
    limiter = RateLimiter(
        redis_pair.durable.url, name="eodhd", quotas=quotas, prefix=f"t{uuid.uuid4().hex[:8]}:"
    )
    clock = Clock(OPEN + 60)  # a minute into the 14:30 bar
    with EodhdProvider(TOKEN, base_url=fake.url, limiter=limiter) as provider:
        feed = PollingFeed(provider, ["AAPL.US", "TSLA.US"], "M5", settle_s=5, clock=clock,
                           sleep=clock.sleep)  # fmt: skip
        assert isinstance(feed, Feed)
        bars = asyncio.run(take(feed, 12))
    six = [int(OPEN) * NS + i * 300 * NS for i in range(6)]
    assert [(b.ts_ns, b.symbol) for b in bars] == [(t, s) for t in six for s in feed.symbols]
    truth = expected_bars("AAPL.US", Timeframe.M5, six[0], six[-1])
    assert [b.close for b in bars if b.symbol == "AAPL.US"] == truth.close.tolist()
    # Each request asks for just one bar, once it is final (5 s after its close).
    seen = fake.requests("intraday")
    assert len(seen) == 12 and all(s.span_s == 299 for s in seen)
    assert clock.slept[0] == pytest.approx(4 * 60 + 5)
    assert {u.name: u.used for u in limiter.usage()} == {"minute": 12, "day": 60}
    limiter.close()


def test_a_bar_not_there_yet_is_asked_again_and_a_refused_token_raises(fake: FakeEodhd) -> None:
    clock = Clock(OPEN + 1)
    fake.script(Canned(404, NO_DATA))  # EODHD has not published the bar yet
    with EodhdProvider(TOKEN, base_url=fake.url) as provider:
        feed = PollingFeed(provider, ["AAPL.US"], "M5", retry_s=10, clock=clock,
                           sleep=clock.sleep)  # fmt: skip
        (bar,) = asyncio.run(take(feed, 1))
    assert bar.ts_ns == int(OPEN) * NS and len(fake.requests()) == 2
    assert feed.requests == 2 and clock.slept[-1] == pytest.approx(10)
    fake.reset()
    fake.script(Canned(401, b'{"message":"Unauthenticated"}'))
    with EodhdProvider(TOKEN, base_url=fake.url) as provider:
        feed = PollingFeed(provider, ["AAPL.US"], "M5", clock=clock, sleep=clock.sleep)
        with pytest.raises(ProviderAuthError, match="TRADERUNNER_EODHD_TOKEN"):
            asyncio.run(take(feed, 1))
