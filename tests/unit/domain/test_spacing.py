"""infer_timeframe: the timeframe bars have, told from their open times, on realistic calendars
(sessions, weekends, holidays, daylight saving, missing bars), and refused when it would be a
guess."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from traderunner.domain.spacing import duration, infer_timeframe
from traderunner.domain.timeframe import Timeframe

# NYSE full-day closures in 2024 that fall on weekdays (New Year, MLK, Presidents, Good Friday,
# Memorial, Juneteenth, Independence, Labor, Thanksgiving, Christmas).
HOLIDAYS_2024 = [
    "2024-01-01", "2024-01-15", "2024-02-19", "2024-03-29", "2024-05-27",
    "2024-06-19", "2024-07-04", "2024-09-02", "2024-11-28", "2024-12-25",
]  # fmt: skip


def ns(index: pd.DatetimeIndex) -> np.ndarray:
    """Epoch nanoseconds (pandas 3 may hold another unit)."""
    return np.asarray(index.as_unit("ns").asi8, dtype=np.int64)


def trading_days(start: str, end: str) -> pd.DatetimeIndex:
    days = pd.bdate_range(start, end)
    return days[~days.isin(pd.DatetimeIndex(HOLIDAYS_2024))]


def session_bars(days: pd.DatetimeIndex, minutes: int, first: str = "09:30") -> np.ndarray:
    """Bars of ``minutes`` opening from ``first`` until 16:00 New York on each day, in UTC ns."""
    out = []
    for day in days:
        opens = pd.date_range(
            f"{day.date()} {first}", f"{day.date()} 15:59", freq=f"{minutes}min",
            tz="America/New_York",
        )  # fmt: skip
        out.append(ns(opens.tz_convert("UTC")))
    return np.concatenate(out).astype(np.int64)


def test_m1_round_the_clock_bars() -> None:
    ts = ns(pd.date_range("2024-05-01", periods=3000, freq="1min", tz="UTC"))
    assert infer_timeframe(ts).timeframe is Timeframe.M1


def test_m5_us_sessions_over_holidays_dst_and_missing_bars() -> None:
    ts = session_bars(trading_days("2024-02-26", "2024-04-05"), 5)  # DST starts 2024-03-10
    rng = np.random.default_rng(1)
    ts = np.sort(rng.choice(ts, size=int(len(ts) * 0.8), replace=False))  # a fifth missing
    found = infer_timeframe(ts)
    assert found.timeframe is Timeframe.M5, found.problem
    assert found.common_s == 300 and found.smallest_s == 300


def test_m15_and_m30_sessions() -> None:
    days = trading_days("2024-06-03", "2024-06-28")
    assert infer_timeframe(session_bars(days, 15)).timeframe is Timeframe.M15
    assert infer_timeframe(session_bars(days, 30)).timeframe is Timeframe.M30


def test_h1_and_h4_sessions_the_sparsest_regular_case() -> None:
    days = trading_days("2024-10-21", "2024-11-15")  # DST ends 2024-11-03
    h1 = infer_timeframe(session_bars(days, 60))  # 09:30 ... 15:30: 7 bars a day
    assert h1.timeframe is Timeframe.H1
    h4 = infer_timeframe(session_bars(days, 240))  # 09:30 and 13:30: half the gaps are 4 h
    assert h4.timeframe is Timeframe.H4, h4.problem
    assert 0.45 < h4.common_share < 0.55


def test_d1_with_weekends_and_holidays_at_midnight_utc() -> None:
    ts = ns(trading_days("2024-01-01", "2024-12-31").tz_localize("UTC"))
    found = infer_timeframe(ts)
    assert found.timeframe is Timeframe.D1
    assert found.common_s == 86_400 and 0.7 < found.common_share < 0.85
    assert found.describe().startswith("most common gap 1 day (")


def test_d1_stamped_at_new_york_midnight_across_daylight_saving() -> None:
    days = trading_days("2024-02-01", "2024-12-31").tz_localize("America/New_York")
    ts = ns(days.tz_convert("UTC"))  # 05:00 UTC in winter, 04:00 in summer
    assert len(set(np.diff(ts) // 10**9)) > 4  # 23 h and 25 h gaps among them
    assert infer_timeframe(ts).timeframe is Timeframe.D1


@pytest.mark.parametrize(
    ("name", "ts", "problem"),
    [
        ("one bar", [10**18], "1 bar(s) are too few"),
        ("none", [], "0 bar(s) are too few"),
        (
            "two-minute bars",
            ns(pd.date_range("2024-05-01", periods=50, freq="2min", tz="UTC")),
            "the most common gap between bars, 2 min, is no timeframe traderunner has",
        ),
        (
            "weekly bars",
            ns(pd.date_range("2024-01-05", periods=30, freq="7D", tz="UTC")),
            "7 days, is no timeframe",
        ),
    ],
)
def test_spacings_that_are_no_timeframe_are_refused(name: str, ts: object, problem: str) -> None:
    found = infer_timeframe(ts)  # type: ignore[arg-type]
    assert found.timeframe is None, name
    assert problem in found.problem


def test_irregular_times_are_refused_even_when_some_gaps_are_a_timeframe() -> None:
    rng = np.random.default_rng(7)
    # Whole minutes apart, 1 to 12 at random: a minute is the most common gap, but rarely.
    gaps = rng.integers(1, 13, 400) * 60
    ts = (1_700_000_000 + np.cumsum(gaps)) * 10**9
    found = infer_timeframe(ts)
    assert found.timeframe is None
    assert "irregular" in found.problem and "is only" in found.problem
    ticks = (1_700_000_000 + np.cumsum(rng.integers(1, 600, 400))) * 10**9
    assert infer_timeframe(ticks).timeframe is None


def test_bars_closer_than_the_common_gap_are_refused_as_mixed() -> None:
    ts = ns(pd.date_range("2024-05-01", periods=100, freq="5min", tz="UTC")).copy()
    stray = np.insert(ts, 40, ts[39] + 60 * 10**9)  # one bar a minute after another
    found = infer_timeframe(stray)
    assert found.timeframe is None
    assert found.problem.startswith("bars are mostly 5 min apart (98% of the gaps) but bar 41")
    assert "mixes timeframes" in found.problem
    # M5 data missing most bars: mostly 15 min apart, yet some bars are 5 min apart.
    sparse = np.concatenate([ts[::3], ts[1:2]])
    assert infer_timeframe(np.sort(sparse)).timeframe is None


def test_durations_read_naturally() -> None:
    assert [duration(s) for s in (0, 45, 300, 137, 3600, 5400, 86_400, 259_200, 90_000)] == [
        "0 s", "45 s", "5 min", "2 min 17 s", "1 h", "1 h 30 min", "1 day", "3 days", "1 d 1 h",
    ]  # fmt: skip
