"""EodhdProvider against a real local HTTP server speaking EODHD's JSON."""

from __future__ import annotations

import functools
import itertools
import json
import logging
import socket
import traceback
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.integration.eodhd.conftest import TOKEN, Waits
from tests.integration.eodhd.fake_eodhd import Canned, FakeEodhd, bars_equal, expected_bars
from tests.redishelpers import RedisPair
from traderunner.cache import RedisResponseCache
from traderunner.domain.sessions import US_EQUITY
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import (
    DataRangeError,
    ProviderAuthError,
    ProviderError,
    ProviderPlanError,
    ProviderResponseError,
    QuotaSpentError,
    RateLimitedError,
)
from traderunner.marketdata.fetch import fetch_to_store
from traderunner.marketdata.providers import Provider
from traderunner.marketdata.providers.eodhd import INTRADAY, EodhdProvider
from traderunner.ratelimit import Quota, RateLimiter
from traderunner.redisdb.connection import connect
from traderunner.redisdb.keys import Keys
from traderunner.store import Store

NS = 1_000_000_000
DAY = 86_400


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def ns(value: datetime) -> int:
    return int(value.timestamp()) * NS


# ------------------------------------------------------------------------- planning
@functools.cache
def _planner() -> EodhdProvider:
    return EodhdProvider("t", base_url="http://127.0.0.1:9/api")  # plans only, never sends


@given(
    tf=st.sampled_from(sorted(INTRADAY)),
    start=st.integers(0, 2_000_000_000),
    length=st.integers(0, 30 * 365 * DAY),
)
def test_plans_cover_the_range_in_requests_the_api_accepts(
    tf: Timeframe, start: int, length: int
) -> None:
    plan = _planner().plan_ns("AAPL.US", tf, start * NS, (start + length) * NS)
    limit = INTRADAY[tf][1] * DAY
    assert plan[0].start_ns == start * NS
    assert plan[-1].end_ns == (start + length) * NS
    for req in plan:
        span = int(req.params()["to"]) - int(req.params()["from"])
        assert 0 <= span <= limit
        assert req.cost == 5
    for prev, nxt in itertools.pairwise(plan):
        assert nxt.start_ns == prev.end_ns + NS  # contiguous, no overlap, no hole
    assert len(plan) == -(-(length + 1) // limit)


def test_the_plan_holds_no_token_and_the_cache_key_ignores_it() -> None:
    a = EodhdProvider(TOKEN, base_url="http://127.0.0.1:9/api")
    b = EodhdProvider("another-token", base_url="http://127.0.0.1:9/api")
    pa = a.plan("AAPL.US", Timeframe.M5, utc(2024, 1, 1), utc(2024, 2, 1))
    pb = b.plan("AAPL.US", Timeframe.M5, utc(2024, 1, 1), utc(2024, 2, 1))
    assert [r.cache_key for r in pa] == [r.cache_key for r in pb]
    assert TOKEN not in repr(pa) + repr(a) + json.dumps([r.params() for r in pa])
    other = a.plan("TSLA.US", Timeframe.M5, utc(2024, 1, 1), utc(2024, 2, 1))
    assert other[0].cache_key != pa[0].cache_key


# ------------------------------------------------------------------ fetching bars
def test_a_5m_range_longer_than_600_days_takes_several_requests(
    fake: FakeEodhd, provider: EodhdProvider
) -> None:
    start, end = utc(2021, 1, 4), utc(2023, 6, 30, 23, 59)
    candles = provider.fetch("AAPL.US", Timeframe.M5, start, end)
    seen = fake.requests("intraday")
    assert len(seen) == 2
    assert all(s.params["interval"] == "5m" and s.token_ok for s in seen)
    assert all(s.span_s <= 600 * DAY for s in seen)
    assert int(seen[1].params["from"]) == int(seen[0].params["to"]) + 1
    assert bars_equal(candles, expected_bars("AAPL.US", Timeframe.M5, ns(start), ns(end)))
    assert candles.source == "eodhd" and candles.symbol == "AAPL.US"
    assert candles.timeframe is Timeframe.M5


def test_chunks_are_merged_and_deduplicated_at_their_edges(
    fake: FakeEodhd, provider: EodhdProvider
) -> None:
    fake.overlap_bars = 3  # every response spills 3 bars over each end of its range
    fake.duplicate_rows = True  # and repeats rows inside
    start, end = utc(2024, 1, 2, 14, 30), utc(2024, 6, 28, 20)
    chunks = list(provider.fetch_chunks("TSLA.US", Timeframe.M1, start, end))
    assert len(chunks) == 2 == len(fake.requests())
    for chunk in chunks:
        assert chunk.candles.ts[0] >= chunk.request.start_ns
        assert chunk.candles.ts[-1] <= chunk.request.end_ns
        assert np.all(np.diff(chunk.candles.ts) > 0)
        assert not chunk.from_cache and chunk.attempts == 1
    merged = provider.fetch("TSLA.US", Timeframe.M1, start, end)
    assert bars_equal(merged, expected_bars("TSLA.US", Timeframe.M1, ns(start), ns(end)))


def test_daily_bars_come_from_the_eod_endpoint(fake: FakeEodhd, provider: EodhdProvider) -> None:
    start, end = utc(2023, 1, 1), utc(2024, 12, 31)
    candles = provider.fetch("AAPL.US", "D1", start, end)
    (seen,) = fake.requests()
    assert seen.endpoint == "eod"
    assert (seen.params["from"], seen.params["to"]) == ("2023-01-01", "2024-12-31")
    assert bars_equal(candles, expected_bars("AAPL.US", Timeframe.D1, ns(start), ns(end)))
    assert provider.plan("AAPL.US", "D1", start, end)[0].cost == 1


def test_the_provider_meets_the_provider_protocol(provider: EodhdProvider) -> None:
    assert isinstance(provider, Provider)
    assert provider.name == "eodhd"


@pytest.mark.parametrize("timeframe", ["M15", "M30", "H4"])
def test_timeframes_eodhd_does_not_serve_are_refused_before_any_request(
    fake: FakeEodhd, provider: EodhdProvider, timeframe: str
) -> None:
    with pytest.raises(DataRangeError, match=f"does not serve {timeframe}.*M1, M5, H1 or D1"):
        provider.fetch("AAPL.US", timeframe, utc(2024, 1, 2), utc(2024, 1, 3))
    assert fake.requests() == []


@pytest.mark.parametrize("symbol", ["AAPL", "", "AAPL.US/../x", "a b.US"])
def test_symbols_not_in_code_exchange_form_are_refused(
    fake: FakeEodhd, provider: EodhdProvider, symbol: str
) -> None:
    with pytest.raises(DataRangeError, match=r"CODE\.EXCHANGE, e\.g\. AAPL\.US"):
        provider.fetch(symbol, "M5", utc(2024, 1, 2), utc(2024, 1, 3))
    assert fake.requests() == []


# ------------------------------------------------------------------- error mapping
M5_DAY = ("AAPL.US", Timeframe.M5, utc(2024, 3, 4), utc(2024, 3, 5))
DAY_BARS = US_EQUITY.minutes // 5  # one regular session of M5 bars


@pytest.mark.parametrize(
    ("canned", "error", "pattern"),
    [
        (Canned(401, b"Unauthenticated"), ProviderAuthError, "set TRADERUNNER_EODHD_TOKEN"),
        (Canned(403, b"Forbidden"), ProviderAuthError, "set TRADERUNNER_EODHD_TOKEN"),
        (
            Canned(403, b"Your subscription plan does not include intraday data"),
            ProviderPlanError,
            "plan does not include.*upgrade",
        ),
        (
            Canned(402, b"Payment Required"),
            QuotaSpentError,
            r"daily call quota is spent \(HTTP 402\).*resets at .* UTC \(midnight GMT\)",
        ),
        (Canned(404, b"Ticker Not Found."), DataRangeError, "'AAPL.US'.*CODE.EXCHANGE"),
        (
            Canned(422, b'{"errors":{"from":["Max period length is 600 days"]}}'),
            ProviderResponseError,
            "HTTP 422.*Max period length",
        ),
        (Canned(200, b"<html>maintenance</html>"), ProviderResponseError, "not JSON"),
        (Canned(200, b'[{"timestamp": 17'), ProviderResponseError, "not JSON"),
        (
            Canned(200, b'{"error": "no data for you"}'),
            ProviderResponseError,
            "error instead of bars: no data for you",
        ),
        (Canned(200, b'{"a": 1}'), ProviderResponseError, "error instead of bars"),
        (Canned(200, b"[1, 2]"), ProviderResponseError, "not a list of bars"),
        (
            Canned(200, b'[{"timestamp": "x", "open": 1, "high": 1, "low": 1, "close": 1}]'),
            ProviderResponseError,
            "non-numeric",
        ),
        (Canned(301, b"", {"Location": "https://x/"}), ProviderError, "redirected"),
    ],
)
def test_errors_map_to_the_error_tree_with_one_clear_line(
    fake: FakeEodhd,
    provider: EodhdProvider,
    canned: Canned,
    error: type[Exception],
    pattern: str,
) -> None:
    fake.script(canned)
    with pytest.raises(error, match=pattern) as caught:
        provider.fetch(*M5_DAY)
    assert "\n" not in str(caught.value)
    assert len(fake.requests()) == 1  # none of these is retried


def test_an_unknown_symbol_names_it_and_the_format(
    fake: FakeEodhd, provider: EodhdProvider
) -> None:
    with pytest.raises(DataRangeError, match=r"'NOPE\.US'.*e\.g\. AAPL\.US"):
        provider.fetch("NOPE.US", "M5", utc(2024, 3, 4), utc(2024, 3, 5))


def test_a_wrong_token_is_refused_with_what_to_set(fake: FakeEodhd) -> None:
    with (
        EodhdProvider("wrong", base_url=fake.url) as p,
        pytest.raises(ProviderAuthError, match="TRADERUNNER_EODHD_TOKEN"),
    ):
        p.fetch(*M5_DAY)
    with pytest.raises(ProviderAuthError, match="no EODHD API token"):
        EodhdProvider("  ", base_url=fake.url)


def test_a_base_url_without_the_api_path_is_named(fake: FakeEodhd) -> None:
    with (
        EodhdProvider(TOKEN, base_url=fake.url.removesuffix("/api")) as p,
        pytest.raises(ProviderError, match=r"no such API path.*TRADERUNNER_EODHD_BASE_URL"),
    ):
        p.fetch(*M5_DAY)


@pytest.mark.parametrize(
    ("bad", "pattern"),
    [("low_above_high", "low above high"), ("nan_close", "missing or non-finite price")],
)
def test_inconsistent_bars_are_refused_naming_the_request(
    fake: FakeEodhd, provider: EodhdProvider, bad: str, pattern: str
) -> None:
    fake.bad_bar = bad
    with pytest.raises(ProviderResponseError, match=pattern) as caught:
        provider.fetch(*M5_DAY)
    assert "EODHD intraday AAPL.US 5m 2024-03-04T00:00:00Z" in str(caught.value)


def test_429_is_retried_after_the_wait_it_asks_for(
    fake: FakeEodhd, provider: EodhdProvider, waits: Waits
) -> None:
    fake.script(Canned(429, b"slow down", {"Retry-After": "2"}), Canned(429, b"again"))
    candles = provider.fetch(*M5_DAY)
    assert len(candles) == DAY_BARS
    assert [s.status for s in fake.requests()] == [429, 429, 200]
    assert waits[0] >= 2  # honours Retry-After
    assert 0 < waits[1] < 2  # no header: exponential backoff


def test_429_that_keeps_coming_raises_rate_limited(
    fake: FakeEodhd, provider: EodhdProvider
) -> None:
    fake.script(*[Canned(429, b"", {"Retry-After": "1"})] * 3)
    with pytest.raises(RateLimitedError, match=r"after 3 tries.*wait 1 s") as caught:
        provider.fetch(*M5_DAY)
    assert caught.value.retry_after == 1
    assert len(fake.requests()) == 3  # max_retries=2: one try and two retries


def test_a_retry_after_longer_than_max_wait_is_not_slept(
    fake: FakeEodhd, provider: EodhdProvider, waits: Waits
) -> None:
    fake.script(Canned(429, b"", {"Retry-After": "3600"}))
    with pytest.raises(RateLimitedError) as caught:
        provider.fetch(*M5_DAY)
    assert caught.value.retry_after == 3600
    assert waits == [] and len(fake.requests()) == 1


def test_server_errors_are_retried_then_reported(fake: FakeEodhd, provider: EodhdProvider) -> None:
    fake.script(Canned(500, b"oops"), Canned(503, b"busy"))
    assert len(provider.fetch(*M5_DAY)) == DAY_BARS
    assert [s.status for s in fake.requests()] == [500, 503, 200]
    fake.reset()
    fake.script(*[Canned(502, b"bad gateway")] * 3)
    with pytest.raises(ProviderResponseError, match=r"failed 3 times .*last with HTTP 502"):
        provider.fetch(*M5_DAY)


def test_a_cut_connection_is_retried_then_reported(
    fake: FakeEodhd, provider: EodhdProvider
) -> None:
    fake.cut_after = 0
    with pytest.raises(ProviderResponseError, match=r"failed 3 times.*retry later"):
        provider.fetch(*M5_DAY)
    assert [s.status for s in fake.requests()] == [0, 0, 0]


def test_bad_base_urls_fail_with_what_to_fix() -> None:
    for url in ("ftp://eodhd.com/api", "eodhd.com/api", "http://", "https://x/api?a=1"):
        with pytest.raises(ProviderError, match="TRADERUNNER_EODHD_BASE_URL"):
            EodhdProvider(TOKEN, base_url=url)
    with (
        EodhdProvider(TOKEN, base_url="http://no-such-host.invalid/api") as p,
        pytest.raises(ProviderError, match=r"cannot resolve the host.*BASE_URL"),
    ):
        p.fetch(*M5_DAY)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        EodhdProvider(TOKEN, base_url=f"http://127.0.0.1:{port}/api") as p,
        pytest.raises(ProviderError, match=r"connection refused.*BASE_URL"),
    ):
        p.fetch(*M5_DAY)


# ------------------------------------------------------------------- the token
def test_the_token_never_appears_in_messages_logs_or_tracebacks(
    fake: FakeEodhd, provider: EodhdProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # everything: httpx logs each URL at INFO
    texts: list[str] = []
    failures = [
        Canned(401, b""),
        Canned(403, f"token {TOKEN} is not valid".encode()),
        Canned(402, f"plan of api_token={TOKEN}".encode()),
        Canned(200, json.dumps({"error": f"bad url ?api_token={TOKEN}&x=1"}).encode()),
        Canned(200, f"<html>{TOKEN}</html>".encode()),
        Canned(422, f"api_token={TOKEN}".encode()),
    ]
    for canned in failures:
        fake.script(canned)
        with pytest.raises((ProviderError, DataRangeError, QuotaSpentError)) as caught:
            provider.fetch(*M5_DAY)
        texts += [str(caught.value), repr(caught.value)]
        texts += traceback.format_exception(caught.value)
    fake.script(Canned(500, b""), Canned(429, b"", {"Retry-After": "0"}))
    provider.fetch(*M5_DAY)  # retries log warnings; success logs the request
    logged = [r.getMessage() for r in caplog.records]
    assert any("api_token=***" in line for line in logged)  # the URL lines were there, masked
    assert any("retry 1 in" in line for line in logged)
    for text in texts + logged:
        assert TOKEN not in text


# ------------------------------------------- the real response cache and rate limiter
@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def responses(redis_pair: RedisPair, prefix: str) -> Iterator[RedisResponseCache]:
    cache = RedisResponseCache(connect(redis_pair.cache.url, decode=False), Keys(prefix), ttl=600)
    yield cache
    cache.close()


def make_limiter(redis_pair: RedisPair, prefix: str, per_day: int = 1000) -> RateLimiter:
    quotas = [Quota(100, 60, "minute", unit="requests"), Quota(per_day, 86_400, "day")]
    return RateLimiter(redis_pair.durable.url, name="eodhd", quotas=quotas, prefix=prefix)


def used(limiter: RateLimiter) -> dict[str, int]:
    return {u.name: u.used for u in limiter.usage()}


def test_a_repeated_fetch_is_served_by_the_response_cache(
    fake: FakeEodhd, responses: RedisResponseCache, redis_pair: RedisPair, prefix: str
) -> None:
    span = ("AAPL.US", "M5", utc(2022, 1, 3), utc(2023, 12, 29))
    with EodhdProvider(TOKEN, base_url=fake.url, response_cache=responses) as p:
        first = p.fetch(*span)
        plan = p.plan(*span)
        assert len(fake.requests()) == 2 == len(plan)
        assert all(responses.get(r.cache_key) is not None for r in plan)
        again = list(p.fetch_chunks(*span))
        assert len(fake.requests()) == 2  # no request the second time
        assert all(c.from_cache and c.attempts == 0 for c in again)
        assert bars_equal(first, p.fetch(*span))
    client = connect(redis_pair.cache.url)
    keys = list(client.scan_iter(f"{prefix}*"))
    client.close()
    assert keys and all(TOKEN not in key for key in keys)


def test_recent_data_is_not_cached(fake: FakeEodhd, responses: RedisResponseCache) -> None:
    now = datetime.now(UTC)
    span = ("AAPL.US", "M5", now - timedelta(days=5), now - timedelta(hours=1))
    with EodhdProvider(TOKEN, base_url=fake.url, response_cache=responses) as p:
        p.fetch(*span)
        p.fetch(*span)
        assert all(responses.get(r.cache_key) is None for r in p.plan(*span))
    assert len(fake.requests()) == 2


def test_an_unreadable_cached_response_is_refetched(
    fake: FakeEodhd, responses: RedisResponseCache
) -> None:
    with EodhdProvider(TOKEN, base_url=fake.url, response_cache=responses) as p:
        (request,) = p.plan(*M5_DAY)
        responses.put(request.cache_key, b"garbage")
        assert len(p.fetch(*M5_DAY)) == DAY_BARS
    assert len(fake.requests()) == 1
    assert responses.get(request.cache_key) != b"garbage"


def test_every_request_and_retry_is_paid_to_the_shared_limiter_cache_hits_are_free(
    fake: FakeEodhd, responses: RedisResponseCache, redis_pair: RedisPair, prefix: str
) -> None:
    limiter = make_limiter(redis_pair, prefix)
    with EodhdProvider(
        TOKEN, base_url=fake.url, limiter=limiter, response_cache=responses, backoff=0.001
    ) as p:
        # The minute counts HTTP requests, the day calls (EODHD's two units).
        p.fetch("AAPL.US", "M5", utc(2021, 1, 4), utc(2023, 6, 30))  # two intraday requests
        assert used(limiter) == {"minute": 2, "day": 10}
        p.fetch("AAPL.US", "M5", utc(2021, 1, 4), utc(2023, 6, 30))  # cached: free
        assert used(limiter) == {"minute": 2, "day": 10}
        p.fetch("AAPL.US", "D1", utc(2024, 1, 1), utc(2024, 6, 30))  # end of day costs 1
        assert used(limiter) == {"minute": 3, "day": 11}
        fake.script(Canned(500, b""))
        p.fetch(*M5_DAY)  # a failed try is a request but costs no call; its retry costs 5
        assert used(limiter) == {"minute": 5, "day": 16}
    limiter.close()


def test_a_spent_daily_quota_fails_fast_instead_of_blocking(
    fake: FakeEodhd, redis_pair: RedisPair, prefix: str, tmp_path: Path
) -> None:
    limiter = make_limiter(redis_pair, prefix, per_day=5)  # one intraday request a day
    store = Store.connect(f"sqlite:///{tmp_path / 'store.db'}")
    with EodhdProvider(TOKEN, base_url=fake.url, limiter=limiter) as p:
        report = fetch_to_store(
            store, p, ["AAPL.US", "TSLA.US"], "M5", utc(2021, 1, 4), utc(2023, 6, 30)
        )
    store.close()
    limiter.close()
    assert len(fake.requests()) == 1
    aapl, tsla = report.symbols
    assert aapl.bars_written > 0 and "'day' quota" in (aapl.error or "")
    assert (tsla.error or "").startswith("not fetched: ")
