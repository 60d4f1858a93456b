"""fetch_to_store: only what the store lacks, stored as it arrives, resumable after failures."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tests.integration.eodhd.conftest import TOKEN
from tests.integration.eodhd.fake_eodhd import Canned, FakeEodhd, bars_equal, expected_bars
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import DataRangeError
from traderunner.marketdata.fetch import fetch_to_store, missing_ranges
from traderunner.marketdata.providers import SyntheticProvider, synthetic_candles
from traderunner.marketdata.providers.eodhd import EodhdProvider
from traderunner.store import Store

NS = 1_000_000_000
M5 = Timeframe.M5
# About 900 days of M5: two requests of at most 600 days per symbol.
START, END = datetime(2021, 1, 4, tzinfo=UTC), datetime(2023, 6, 30, 23, 59, tzinfo=UTC)


def ns(value: datetime) -> int:
    return int(value.timestamp()) * NS


def stored(store: Store, symbol: str, tf: Timeframe = M5) -> object:
    return store.candles.load(symbol, tf)


def test_a_fetch_stores_every_bar_and_a_rerun_asks_for_nothing(
    fake: FakeEodhd, provider: EodhdProvider, store: Store
) -> None:
    calls: list[tuple[int, int, str]] = []
    report = fetch_to_store(
        store,
        provider,
        ["AAPL.US", "TSLA.US"],
        M5,
        START,
        END,
        progress=lambda d, t, item: calls.append((d, t, item)),
    )
    assert report.ok, report
    planned = len(provider.plan("AAPL.US", M5, START, END))
    assert planned == 2
    assert [s.requests for s in report.symbols] == [planned, planned]
    assert len(fake.requests()) == 2 * planned
    for symbol in ("AAPL.US", "TSLA.US"):
        expected = expected_bars(symbol, M5, ns(START), ns(END))
        assert bars_equal(stored(store, symbol), expected)
        info = store.candles.series(symbol, M5)
        assert info is not None and info.source == "eodhd"
    assert report.bars_written == sum(
        len(expected_bars(s, M5, ns(START), ns(END))) for s in ("AAPL.US", "TSLA.US")
    )
    assert calls[0] == (0, 4, "") and calls[-1][:2] == (4, 4)
    assert [d for d, _, _ in calls] == sorted(d for d, _, _ in calls)

    fake.reset()
    again = fetch_to_store(store, provider, ["AAPL.US", "TSLA.US"], M5, START, END)
    assert again.ok and again.requests == 0 and again.bars_written == 0
    assert all(s.asked == () for s in again.symbols)
    assert fake.requests() == []


def test_an_interrupted_fetch_keeps_what_arrived_and_resumes_with_the_rest(
    fake: FakeEodhd, provider: EodhdProvider, store: Store
) -> None:
    fake.cut_after = 1  # the server dies after its first answer
    report = fetch_to_store(store, provider, ["AAPL.US", "TSLA.US"], M5, START, END)
    assert not report.ok
    aapl, tsla = report.symbols
    first = provider.plan("AAPL.US", M5, START, END)[0]
    # AAPL kept its first chunk and says what is missing, and why.
    assert aapl.bars_written == len(expected_bars("AAPL.US", M5, first.start_ns, first.end_ns))
    assert bars_equal(
        stored(store, "AAPL.US"), expected_bars("AAPL.US", M5, first.start_ns, first.end_ns)
    )
    assert [(m.start_ns, m.end_ns) for m in aapl.missing] == [(first.end_ns + NS, ns(END))]
    assert "failed 3 times" in (aapl.error or "")
    assert aapl.missing[0].reason == aapl.error
    assert tsla.bars_written == 0 and tsla.missing[0].start_ns == ns(START)

    kept_last = int(stored(store, "AAPL.US").ts[-1])  # type: ignore[attr-defined]
    fake.reset()  # the server is back
    resumed = fetch_to_store(store, provider, ["AAPL.US", "TSLA.US"], M5, START, END)
    assert resumed.ok, resumed
    # Only what was missing: from the bar after the last one kept to the end.
    rest = (kept_last + 300 * NS, ns(END))
    assert resumed.symbols[0].asked == (rest,)
    aapl_asked = [s for s in fake.requests() if s.symbol == "AAPL.US"]
    assert len(aapl_asked) == len(provider.plan_ns("AAPL.US", M5, *rest))
    assert all(int(s.params["from"]) * NS >= rest[0] for s in aapl_asked)
    for symbol in ("AAPL.US", "TSLA.US"):
        assert bars_equal(stored(store, symbol), expected_bars(symbol, M5, ns(START), ns(END)))


def test_a_hole_inside_the_stored_range_is_the_only_thing_asked(
    fake: FakeEodhd, provider: EodhdProvider, store: Store
) -> None:
    jan = (datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 31, 23, tzinfo=UTC))
    apr = (datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 4, 30, 23, tzinfo=UTC))
    assert fetch_to_store(store, provider, ["AAPL.US"], M5, *jan).ok
    assert fetch_to_store(store, provider, ["AAPL.US"], M5, *apr).ok
    fake.reset()
    report = fetch_to_store(store, provider, ["AAPL.US"], M5, jan[0], apr[1])
    assert report.ok
    (hole,) = report.symbols[0].asked
    (seen,) = fake.requests()
    # February and March, from the first session after January to the last before April.
    assert datetime.fromtimestamp(hole[0] / NS, tz=UTC).date() == date(2024, 2, 1)
    assert datetime.fromtimestamp(hole[1] / NS, tz=UTC).date() == date(2024, 3, 29)
    assert (int(seen.params["from"]), int(seen.params["to"])) == (hole[0] // NS, hole[1] // NS)
    assert bars_equal(
        stored(store, "AAPL.US"), expected_bars("AAPL.US", M5, ns(jan[0]), ns(apr[1]))
    )


def test_single_missing_weekdays_are_taken_for_holidays_longer_holes_are_asked(
    fake: FakeEodhd, provider: EodhdProvider, store: Store
) -> None:
    start, end = datetime(2024, 6, 3, tzinfo=UTC), datetime(2024, 6, 28, 23, tzinfo=UTC)
    fake.missing_days = {date(2024, 6, 19), date(2024, 6, 12), date(2024, 6, 13)}
    assert fetch_to_store(store, provider, ["AAPL.US"], M5, start, end).ok
    fake.reset()
    fake.missing_days = {date(2024, 6, 19), date(2024, 6, 12), date(2024, 6, 13)}
    report = fetch_to_store(store, provider, ["AAPL.US"], M5, start, end)
    (seen,) = fake.requests()  # the two-day hole only, not the lone Juneteenth
    lo = datetime.fromtimestamp(int(seen.params["from"]), tz=UTC)
    hi = datetime.fromtimestamp(int(seen.params["to"]), tz=UTC)
    assert (lo.date(), hi.date()) == (date(2024, 6, 12), date(2024, 6, 13))
    assert report.ok and report.bars_written == 0


def test_an_unknown_symbol_fails_alone(
    fake: FakeEodhd, provider: EodhdProvider, store: Store
) -> None:
    start, end = datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 8, 23, tzinfo=UTC)
    report = fetch_to_store(store, provider, ["NOPE.US", "AAPL.US"], M5, start, end)
    nope, aapl = report.symbols
    assert "NOPE.US" in (nope.error or "") and nope.bars_written == 0
    assert aapl.ok and aapl.bars_written == len(expected_bars("AAPL.US", M5, ns(start), ns(end)))
    assert not report.ok


def test_a_refused_token_stops_the_whole_fetch_after_one_request(
    fake: FakeEodhd, store: Store
) -> None:
    start, end = datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 8, 23, tzinfo=UTC)
    with EodhdProvider("wrong-token", base_url=fake.url) as p:
        report = fetch_to_store(store, p, ["AAPL.US", "TSLA.US"], M5, start, end)
    assert len(fake.requests()) == 1
    first, second = report.symbols
    assert "TRADERUNNER_EODHD_TOKEN" in (first.error or "")
    assert (second.error or "").startswith("not fetched: ")
    assert second.requests == 0 and second.missing[0].start_ns == ns(start)
    assert store.candles.list_series() == []


def test_rate_limited_mid_fetch_keeps_earlier_chunks(
    fake: FakeEodhd, provider: EodhdProvider, store: Store
) -> None:
    fake.cut_after = 1
    fake.cut_status = 429
    report = fetch_to_store(store, provider, ["AAPL.US"], M5, START, END)
    (aapl,) = report.symbols
    assert "rate limit" in (aapl.error or "") and aapl.bars_written > 0
    assert len(aapl.missing) == 1


def test_bad_input_fails_before_any_request(
    fake: FakeEodhd, provider: EodhdProvider, store: Store
) -> None:
    for symbols, tf in ((["AAPL.US", "bad symbol"], M5), (["AAPL.US"], Timeframe.M15), ([], M5)):
        with pytest.raises(DataRangeError):
            fetch_to_store(store, provider, symbols, tf, START, END)
    with pytest.raises(DataRangeError, match="after end"):
        fetch_to_store(store, provider, ["AAPL.US"], M5, END, START)
    assert fake.requests() == []


def test_the_end_is_clipped_to_now(fake: FakeEodhd, provider: EodhdProvider, store: Store) -> None:
    start, end = datetime(2024, 3, 4, tzinfo=UTC), datetime(2099, 1, 1, tzinfo=UTC)
    now = datetime(2024, 3, 6, 12, tzinfo=UTC)
    report = fetch_to_store(store, provider, ["AAPL.US"], M5, start, end, now=now)
    assert report.end_ns == ns(now)
    (seen,) = fake.requests()
    assert int(seen.params["to"]) == int(now.timestamp())


def test_a_plain_provider_is_asked_once_per_missing_range(store: Store) -> None:
    start, end = datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 29, 23, tzinfo=UTC)
    report = fetch_to_store(store, SyntheticProvider(), ["SYN"], M5, start, end)
    assert report.ok and report.requests == 1
    assert bars_equal(stored(store, "SYN"), synthetic_candles("SYN", M5, start, end))
    assert missing_ranges(store, "SYN", M5, ns(start), ns(end)) == []


def test_missing_ranges_ignore_what_cannot_hold_bars(provider: EodhdProvider, store: Store) -> None:
    # A weekend, and the evening after a stored session, hold no bars: nothing to ask.
    assert (
        missing_ranges(
            store,
            "AAPL.US",
            M5,
            ns(datetime(2024, 3, 9, tzinfo=UTC)),
            ns(datetime(2024, 3, 10, 23, tzinfo=UTC)),
        )
        == []
    )
    day = (datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 4, 23, 59, tzinfo=UTC))
    assert fetch_to_store(store, provider, ["AAPL.US"], M5, *day).ok
    assert missing_ranges(store, "AAPL.US", M5, ns(day[0]), ns(day[1])) == []


def test_a_server_answering_garbage_for_one_symbol_spares_the_next(
    fake: FakeEodhd, provider: EodhdProvider, store: Store
) -> None:
    start, end = datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 8, 23, tzinfo=UTC)
    fake.script(Canned(200, b"not json"))
    report = fetch_to_store(store, provider, ["AAPL.US", "TSLA.US"], M5, start, end)
    assert "not JSON" in (report.symbols[0].error or "")
    tsla = report.symbols[1]
    assert tsla.ok and tsla.bars_written == len(expected_bars("TSLA.US", M5, ns(start), ns(end)))
    assert TOKEN not in repr(report)
