"""The EODHD API as it really answers (issue 9): each behaviour taught to the fake server.

Null-price bars, the 402 of a spent daily quota, the minute counted in requests and the day in
calls, the free plan's ``warning`` element, provisional last sessions, 404 for an empty range
against an unknown ticker, and 502 maintenance windows. The response bodies of
``fixtures/*.json`` are written from the examples of EODHD's documentation pages (each names
its page) and parsed as they are.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from tests.integration.eodhd.conftest import TOKEN, Waits
from tests.integration.eodhd.fake_eodhd import FREE_PLAN_WARNING, FakeEodhd, expected_bars
from tests.redishelpers import RedisPair
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import ProviderResponseError, QuotaSpentError
from traderunner.marketdata.fetch import fetch_to_store
from traderunner.marketdata.providers.eodhd import EodhdProvider, EodhdRequest
from traderunner.marketdata.providers.eodhd_wire import parse_response
from traderunner.ratelimit import Quota, RateLimiter
from traderunner.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
NS = 1_000_000_000


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def ns(value: datetime) -> int:
    return int(value.timestamp()) * NS


def limiter(
    redis_pair: RedisPair, per_minute: int = 1000, per_day: int = 100_000, prefix: str = ""
) -> RateLimiter:
    quotas = [
        Quota(per_minute, 60, "minute", unit="requests"),
        Quota(per_day, 86_400, "day", unit="cost"),
    ]
    prefix = prefix or f"t{uuid.uuid4().hex[:8]}:"
    return RateLimiter(redis_pair.durable.url, name="eodhd", quotas=quotas, prefix=prefix)


# ------------------------------------------------------------------ documented bodies
def _request(spec: dict[str, object]) -> EodhdRequest:
    if spec["endpoint"] == "eod":
        lo = ns(datetime.fromisoformat(str(spec["from"])).replace(tzinfo=UTC))
        hi = ns(datetime.fromisoformat(str(spec["to"])).replace(tzinfo=UTC))
        return EodhdRequest("eod", str(spec["symbol"]), "d", lo, hi, 1)
    lo, hi = int(str(spec["from"])) * NS, int(str(spec["to"])) * NS
    return EodhdRequest("intraday", str(spec["symbol"]), str(spec["interval"]), lo, hi, 5)


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.json")))
def test_bodies_written_from_the_documentation_parse_as_the_pages_say(name: str) -> None:
    fixture = json.loads((FIXTURES / name).read_text())
    assert fixture["page"].startswith("https://eodhd.com/")  # every body names its page
    request = _request(fixture["request"])
    body = json.dumps(fixture["body"]).encode()
    expect = fixture["expect"]
    if "error" in expect:
        with pytest.raises(ProviderResponseError, match=expect["error"]):
            parse_response(request, body, str)
        return
    parsed = parse_response(request, body, str)
    assert len(parsed.candles) == expect["bars"]
    assert parsed.skipped == expect["skipped"]
    assert parsed.warning == expect["warning"]
    assert parsed.candles.close[0] == expect["first_close"]
    assert np.all(np.isfinite(parsed.candles.volume))  # a null volume is 0, not NaN


# ------------------------------------------------------------------------- null prices
def test_null_price_bars_are_skipped_counted_and_a_rerun_does_not_fail(
    fake: FakeEodhd, provider: EodhdProvider, store: Store
) -> None:
    fake.null_every = 7
    start, end = utc(2024, 3, 4), utc(2024, 3, 8, 23)
    report = fetch_to_store(store, provider, ["AAPL.US", "TSLA.US"], "M5", start, end)
    full = len(expected_bars("AAPL.US", Timeframe.M5, ns(start), ns(end)))
    assert report.ok, report
    aapl, tsla = report.symbols
    assert aapl.skipped_bars == full // 7 and aapl.bars_written == full - full // 7
    assert tsla.ok and tsla.bars_written > 0  # the next symbol is not stopped
    assert report.skipped_bars == aapl.skipped_bars + tsla.skipped_bars
    again = fetch_to_store(store, provider, ["AAPL.US"], "M5", start, end)
    assert again.ok  # the holes are single bars inside sessions: nothing more is asked


# ---------------------------------------------------------------- 402: day quota spent
def test_a_402_stops_the_whole_fetch_marks_the_day_spent_for_everyone_and_resumes(
    fake: FakeEodhd, redis_pair: RedisPair, store: Store
) -> None:
    fake.daily_calls = 5  # one intraday request's worth of calls
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    shared = limiter(redis_pair, prefix=prefix)
    start, end = utc(2021, 1, 4), utc(2023, 6, 30)  # two requests per symbol
    with EodhdProvider(TOKEN, base_url=fake.url, limiter=shared) as p:
        report = fetch_to_store(store, p, ["AAPL.US", "TSLA.US"], "M5", start, end)
    statuses = [s.status for s in fake.requests()]
    assert statuses == [200, 402]  # TSLA.US is never asked: the day is spent for all
    tomorrow = datetime.now(UTC).date().toordinal() + 1
    midnight = datetime.fromordinal(tomorrow).replace(tzinfo=UTC).timestamp()
    assert report.quota_resets_at == midnight
    aapl, tsla = report.symbols
    assert aapl.bars_written > 0 and "quota is spent" in (aapl.error or "")
    assert (tsla.error or "").startswith("not fetched: ")
    # Another process (its own limiter object on the same Redis) refuses at once, no request.
    other = limiter(redis_pair, prefix=prefix)
    assert other.spent() == {"day": midnight}
    with pytest.raises(QuotaSpentError, match=r"spent until .* UTC") as caught:
        other.acquire(5, deadline=10)
    assert caught.value.resets_at == midnight
    assert {u.name: u.spent_until for u in other.usage()}["day"] == midnight
    # The 402 cost no call: the day window holds only the successful request's 5.
    assert {u.name: u.used for u in other.usage()} == {"minute": 2, "day": 5}
    # Midnight GMT: the quota is back; the same fetch goes on from where it stopped.
    fake.reset()
    shared.reset()
    with EodhdProvider(TOKEN, base_url=fake.url, limiter=shared) as p:
        resumed = fetch_to_store(store, p, ["AAPL.US", "TSLA.US"], "M5", start, end)
    assert resumed.ok and resumed.quota_resets_at is None
    assert [s.symbol for s in fake.requests()] == ["AAPL.US", "TSLA.US", "TSLA.US"]
    other.close()
    shared.close()


# --------------------------------------------------------- minute: requests; day: calls
def test_the_minute_counts_requests_and_the_day_counts_calls(
    fake: FakeEodhd, redis_pair: RedisPair, store: Store
) -> None:
    fake.per_minute = 4  # the server refuses a fifth request within a minute (HTTP 429)
    shared = limiter(redis_pair, per_minute=4)
    with EodhdProvider(TOKEN, base_url=fake.url, limiter=shared, limit_wait=0) as p:
        report = fetch_to_store(
            store, p, ["AAPL.US", "TSLA.US"], "M5", utc(2021, 1, 4), utc(2023, 6, 30)
        )
        # four intraday requests fit a minute of four requests, though they cost 20 calls
        assert report.ok and report.requests == 4
        assert {u.name: u.used for u in shared.usage()} == {"minute": 4, "day": 20}
        assert fake.calls_used == 20 and all(s.status == 200 for s in fake.requests())
        with pytest.raises(Exception, match="'minute' quota"):
            p.fetch("AAPL.US", "D1", utc(2024, 1, 1), utc(2024, 2, 1))  # a fifth: refused here
    assert len(fake.requests()) == 4  # never sent: no 429 from the server
    shared.close()


# ------------------------------------------------------------- free plan's warning
def test_the_free_plans_warning_is_kept_as_a_warning_and_the_data_is_kept(
    fake: FakeEodhd, provider: EodhdProvider, store: Store
) -> None:
    fake.free_plan_from = date(2024, 1, 2)
    report = fetch_to_store(store, provider, ["AAPL.US"], "D1", utc(2023, 1, 2), utc(2024, 6, 28))
    assert report.ok and report.warnings == (FREE_PLAN_WARNING,)
    stored = store.candles.load("AAPL.US", Timeframe.D1)
    assert stored.ts[0] == ns(utc(2024, 1, 2)) and len(stored) == report.bars_written > 100


# --------------------------------------------- provisional last sessions are re-fetched
def test_a_resumed_fetch_refetches_the_last_sessions_and_overwrites_them(
    fake: FakeEodhd, provider: EodhdProvider, store: Store
) -> None:
    start, end = utc(2024, 3, 4), utc(2024, 3, 8, 23)
    now = utc(2024, 3, 8, 22)  # just after the close: the last bars are provisional
    first = fetch_to_store(store, provider, ["AAPL.US"], "M5", start, end, now=now)
    assert first.ok
    fake.volume_bump = 1000.0  # EODHD revises the volume of the last sessions
    later = utc(2024, 3, 9, 3)
    again = fetch_to_store(store, provider, ["AAPL.US"], "M5", start, end, now=later)
    assert again.ok and again.requests == 1
    (asked,) = again.symbols[0].asked
    assert asked[0] == ns(utc(2024, 3, 7, 14, 30))  # the first bar of the second-last session
    stored = store.candles.load("AAPL.US", Timeframe.M5, ns(start), ns(end))
    truth = expected_bars("AAPL.US", Timeframe.M5, ns(start), ns(end))
    revised = stored.ts >= asked[0]
    assert np.array_equal(stored.volume[revised], np.round(truth.volume[revised]) + 1000)
    assert np.array_equal(stored.volume[~revised], np.round(truth.volume[~revised]))
    # Old data is final: a fetch long after asks for nothing; refetch_sessions=0 turns it off.
    assert fetch_to_store(store, provider, ["AAPL.US"], "M5", start, end).requests == 0
    off = fetch_to_store(store, provider, ["AAPL.US"], "M5", start, end, now=later,
                         refetch_sessions=0)  # fmt: skip
    assert off.requests == 0


# ---------------------------------------------------- 404: empty range vs unknown ticker
def test_an_empty_chunk_is_not_an_unknown_ticker_and_the_chunks_after_it_run(
    fake: FakeEodhd, provider: EodhdProvider, store: Store
) -> None:
    # 5-minute history starts in October 2020: the first 600-day chunk holds nothing.
    start, end = utc(2018, 1, 2), utc(2021, 3, 31)
    report = fetch_to_store(store, provider, ["AAPL.US", "NOPE.US"], "M5", start, end)
    aapl, nope = report.symbols
    assert aapl.ok and aapl.empty_chunks >= 1 and aapl.bars_written > 0
    statuses = [s.status for s in fake.requests("intraday") if s.symbol == "AAPL.US"]
    assert statuses[0] == 404 and statuses[-1] == 200
    series = store.candles.series("AAPL.US", Timeframe.M5)
    assert series is not None and series.first_ns >= ns(utc(2020, 10, 1))
    assert not nope.ok and "does not know the symbol 'NOPE.US'" in (nope.error or "")
    assert len([s for s in fake.requests() if s.symbol == "NOPE.US"]) == 1  # stopped at once


# ------------------------------------------------------------- 502 maintenance windows
def test_a_maintenance_window_is_ridden_out_within_the_outage_budget(
    fake: FakeEodhd, waits: Waits
) -> None:
    span = ("AAPL.US", "M5", utc(2024, 3, 4), utc(2024, 3, 5))
    fake.maintenance(8)
    with EodhdProvider(
        TOKEN, base_url=fake.url, backoff=1, outage_budget=600, outage_max_wait=120, sleep=waits
    ) as p:
        assert len(p.fetch(*span)) > 0
    assert [s.status for s in fake.requests()] == [502] * 8 + [200]
    assert max(waits) == 120 and sum(waits) > 240  # minutes of back-off, not 7.5 s
    fake.reset()
    waits.clear()
    fake.maintenance(50)
    with (
        EodhdProvider(TOKEN, base_url=fake.url, backoff=1, outage_budget=300, sleep=waits) as p,
        pytest.raises(ProviderResponseError, match=r"HTTP 502.*TRADERUNNER_EODHD_OUTAGE_BUDGET"),
    ):
        p.fetch(*span)
    assert sum(waits) == pytest.approx(300)  # the budget, and no more
