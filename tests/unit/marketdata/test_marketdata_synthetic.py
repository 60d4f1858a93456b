"""Synthetic candles: deterministic, range-independent, session-bound, internally consistent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from traderunner.domain import CandleArrays, Timeframe
from traderunner.errors import DataRangeError
from traderunner.marketdata import Provider, SyntheticProvider, synthetic_candles

NY = ZoneInfo("America/New_York")
START = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday
END = datetime(2025, 1, 31, 23, 59, tzinfo=UTC)


def same(a: CandleArrays, b: CandleArrays) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(getattr(a, n), getattr(b, n))
        for n in ("ts", "open", "high", "low", "close", "volume")
    )


def test_same_inputs_give_identical_bars() -> None:
    a = synthetic_candles("AAPL", Timeframe.M5, START, END)
    b = synthetic_candles("AAPL", Timeframe.M5, START, END)
    assert len(a) == 20 * 78
    assert same(a, b)
    assert a.source == "synthetic"
    assert (a.symbol, a.timeframe) == ("AAPL", Timeframe.M5)


def test_seed_and_symbol_change_the_bars() -> None:
    base = synthetic_candles("AAPL", Timeframe.M5, START, END)
    other_seed = synthetic_candles("AAPL", Timeframe.M5, START, END, seed=1)
    other_symbol = synthetic_candles("MSFT", Timeframe.M5, START, END)
    assert np.array_equal(base.ts, other_seed.ts)
    assert not np.array_equal(base.close, other_seed.close)
    assert not np.array_equal(base.close, other_symbol.close)


@pytest.mark.parametrize("timeframe", [Timeframe.M1, Timeframe.M15, Timeframe.H1, Timeframe.D1])
def test_a_sub_range_is_exactly_the_slice_of_a_longer_range(timeframe: Timeframe) -> None:
    long = synthetic_candles("TSLA", timeframe, START, END)
    lo = datetime(2025, 1, 14, 15, 0, tzinfo=UTC)
    hi = datetime(2025, 1, 22, 18, 30, tzinfo=UTC)
    if timeframe is Timeframe.D1:
        lo, hi = datetime(2025, 1, 14, tzinfo=UTC), datetime(2025, 1, 22, tzinfo=UTC)
    short = synthetic_candles("TSLA", timeframe, lo, hi)
    window = long.between(int(pd.Timestamp(lo).value), int(pd.Timestamp(hi).value))
    assert len(short) > 0
    assert same(short, window)


def test_the_day_does_not_depend_on_how_far_back_the_range_starts() -> None:
    day_start = datetime(2025, 1, 31, tzinfo=UTC)
    alone = synthetic_candles("AAPL", Timeframe.M30, day_start, END)
    from_far = synthetic_candles("AAPL", Timeframe.M30, datetime(2024, 6, 3, tzinfo=UTC), END)
    assert same(alone, from_far.between(int(pd.Timestamp(day_start).value), None))


@pytest.mark.parametrize("timeframe", list(Timeframe))
def test_ohlc_is_consistent_and_positive(timeframe: Timeframe) -> None:
    bars = synthetic_candles("TSLA", timeframe, START, END)
    assert len(bars) > 0
    assert np.all(bars.low <= np.minimum(bars.open, bars.close))
    assert np.all(bars.high >= np.maximum(bars.open, bars.close))
    assert np.all(bars.low > 0)
    assert np.all(bars.volume >= 0)
    assert np.all(np.diff(bars.ts) > 0)
    assert np.all(bars.ts % 1_000_000_000 == 0)


def test_bigger_bars_are_the_aggregates_of_smaller_ones() -> None:
    m5 = synthetic_candles("MSFT", Timeframe.M5, START, END).to_frame()
    m15 = synthetic_candles("MSFT", Timeframe.M15, START, END).to_frame()
    d1 = synthetic_candles("MSFT", Timeframe.D1, START, END).to_frame()
    grouped = m5.groupby(m5.index.floor("15min")).agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    pd.testing.assert_frame_equal(grouped, m15, check_freq=False, check_names=False)
    daily = m5.groupby(m5.index.floor("1D")).agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    pd.testing.assert_frame_equal(daily, d1, check_freq=False, check_names=False)


def test_intraday_bars_stay_inside_new_york_sessions_across_the_dst_change() -> None:
    # US clocks moved forward on Sunday 2024-03-10: the open is 14:30 UTC before, 13:30 after.
    bars = synthetic_candles(
        "AAPL",
        Timeframe.M5,
        datetime(2024, 3, 6, tzinfo=UTC),
        datetime(2024, 3, 13, 23, tzinfo=UTC),
    )
    utc = bars.index
    local = utc.tz_convert(NY)
    minutes = local.hour * 60 + local.minute
    assert np.all((minutes >= 9 * 60 + 30) & (minutes < 16 * 60))
    assert set(local.day_of_week) <= {0, 1, 2, 3, 4}
    days = pd.Series(utc, index=local.date).groupby(level=0)
    firsts = {str(d): (ts.min().strftime("%H:%M"), len(ts)) for d, ts in days}
    assert firsts == {
        "2024-03-06": ("14:30", 78),
        "2024-03-07": ("14:30", 78),
        "2024-03-08": ("14:30", 78),
        "2024-03-11": ("13:30", 78),
        "2024-03-12": ("13:30", 78),
        "2024-03-13": ("13:30", 78),
    }


def test_hourly_bars_end_with_a_half_hour_bar_and_daily_bars_skip_weekends() -> None:
    h1 = synthetic_candles("AAPL", Timeframe.H1, START, START + timedelta(hours=23))
    local = h1.index.tz_convert(NY)
    assert [t.strftime("%H:%M") for t in local] == [
        "09:30", "10:30", "11:30", "12:30", "13:30", "14:30", "15:30",
    ]  # fmt: skip
    d1 = synthetic_candles("AAPL", Timeframe.D1, START, END)
    assert len(d1) == 20
    assert set(d1.index.day_of_week) <= {0, 1, 2, 3, 4}
    assert np.all(d1.index == d1.index.normalize())  # stamped at 00:00 UTC


def test_moves_and_volume_look_like_a_us_stock() -> None:
    d1 = synthetic_candles("AAPL", Timeframe.D1, datetime(2023, 1, 2, tzinfo=UTC), END)
    daily = np.diff(np.log(d1.close))
    assert 0.005 < daily.std() < 0.05  # between 8% and 80% a year
    m5 = synthetic_candles("AAPL", Timeframe.M5, START, END)
    local = m5.index.tz_convert(NY)
    minutes = local.hour * 60 + local.minute
    volume = pd.Series(m5.volume).groupby(np.asarray(minutes)).mean()
    # U-shaped: the first and last half hours trade more than lunchtime.
    assert volume.loc[570:595].mean() > 1.5 * volume.loc[720:780].mean()
    assert volume.loc[930:955].mean() > 1.5 * volume.loc[720:780].mean()
    moves = pd.Series(np.abs(np.log(m5.close / m5.open))).groupby(np.asarray(minutes)).mean()
    assert moves.loc[570:595].mean() > moves.loc[720:780].mean()


def test_weekends_are_empty_and_naive_datetimes_are_utc() -> None:
    saturday = datetime(2025, 1, 4, tzinfo=UTC)
    empty = synthetic_candles("AAPL", Timeframe.M5, saturday, saturday + timedelta(days=1))
    assert len(empty) == 0
    assert empty.source == "synthetic"
    naive = synthetic_candles("AAPL", Timeframe.M5, datetime(2025, 1, 6), datetime(2025, 1, 7))  # noqa: DTZ001
    assert same(naive, synthetic_candles("AAPL", Timeframe.M5, START, START + timedelta(days=1)))


def test_bad_requests_say_what_to_do() -> None:
    with pytest.raises(DataRangeError, match="swap"):
        synthetic_candles("AAPL", Timeframe.M5, END, START)
    with pytest.raises(DataRangeError, match="needs a symbol"):
        synthetic_candles(" ", Timeframe.M5, START, END)
    with pytest.raises(DataRangeError, match="covers 1990-01-01"):
        synthetic_candles("AAPL", Timeframe.D1, datetime(1985, 1, 1, tzinfo=UTC), END)


def test_the_provider_is_the_function_behind_the_protocol() -> None:
    provider = SyntheticProvider(seed=3)
    assert isinstance(provider, Provider)
    assert provider.name == "synthetic"
    got = provider.fetch("AAPL", Timeframe.M15, START, END)
    assert same(got, synthetic_candles("AAPL", Timeframe.M15, START, END, seed=3))
    assert datetime.fromtimestamp(int(got.ts[0]) // 1_000_000_000, tz=UTC).date() == START.date()
