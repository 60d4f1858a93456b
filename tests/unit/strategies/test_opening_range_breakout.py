"""opening_range_breakout: per-day ranges, breakouts, flat before the close, DST, gaps."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from traderunner.domain.candles import CandleArrays
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import StrategyError
from traderunner.strategies import get_strategy

NY = ZoneInfo("America/New_York")
UTC = ZoneInfo("UTC")
ORB = get_strategy("opening_range_breakout")
CandleBuilder = Callable[..., CandleArrays]


def reference_orb(
    candles: CandleArrays,
    range_minutes: int = 30,
    exit_minutes: int = 5,
    bar: float = 5.0,
    tz: str = "America/New_York",
    open_hm: tuple[int, int] = (9, 30),
    close_hm: tuple[int, int] = (16, 0),
) -> np.ndarray:
    """The documented rule, one bar at a time with datetime/zoneinfo."""
    zone = ZoneInfo(tz)
    open_m = open_hm[0] * 60 + open_hm[1]
    cutoff = close_hm[0] * 60 + close_hm[1] - exit_minutes
    out = np.zeros(len(candles), dtype=np.int8)
    day = None
    state, opened, rh, rl = 0, False, -np.inf, np.inf
    for i, t in enumerate(candles.ts):
        local = datetime.fromtimestamp(int(t) // 10**9, tz=UTC).astimezone(zone)
        if local.date() != day:
            day, state, opened, rh, rl = local.date(), 0, False, -np.inf, np.inf
        minute = local.hour * 60 + local.minute
        since = minute - open_m
        if 0 <= since < range_minutes:
            opened = opened or since < bar
            rh, rl = max(rh, candles.high[i]), min(rl, candles.low[i])
        tradable = opened and since >= range_minutes and minute + 2 * bar <= cutoff
        if not tradable:
            state = 0
        elif candles.close[i] > rh:
            state = 1
        elif candles.close[i] < rl:
            state = -1
        out[i] = state
    return out


def day_bars(
    day: date, closes: dict[time, float], start: time, end: time
) -> list[tuple[int, float]]:
    """M5 bars of one day: close 100 unless given in ``closes``."""
    out = []
    t = datetime.combine(day, start, tzinfo=NY)
    while t < datetime.combine(day, end, tzinfo=NY):
        out.append((int(t.timestamp()) * 10**9, closes.get(t.time(), 100.0)))
        t += timedelta(minutes=5)
    return out


def hand_made(
    bars: list[tuple[int, float]], timeframe: Timeframe | None = Timeframe.M5
) -> CandleArrays:
    ts = np.array([b[0] for b in bars], dtype=np.int64)
    close = np.array([b[1] for b in bars])
    return CandleArrays(
        ts=ts,
        open=close.copy(),
        high=close + 1.0,
        low=close - 1.0,
        close=close,
        volume=np.ones(len(ts)),
        timeframe=timeframe,
    )


def positions_by_clock(candles: CandleArrays, target: np.ndarray) -> dict[tuple[date, time], int]:
    out = {}
    for t, v in zip(candles.ts, target, strict=True):
        local = datetime.fromtimestamp(int(t) // 10**9, tz=UTC).astimezone(NY)
        out[(local.date(), local.time())] = int(v)
    return out


def test_a_breakout_is_held_until_the_exit_window_and_never_overnight() -> None:
    d1, d2 = date(2024, 1, 2), date(2024, 1, 3)
    # Range bars 09:30-09:55 have high 101 / low 99; 10:15 closes at 102.5, above the range.
    bars = day_bars(d1, {time(10, 15): 102.5}, time(9, 30), time(16, 0))
    bars += day_bars(d2, {time(11, 0): 97.0}, time(9, 30), time(16, 0))
    c = hand_made(bars)
    by_clock = positions_by_clock(c, ORB().target_positions(c))
    for (day, clock), value in by_clock.items():
        if day == d1:
            # Long from the breakout bar; flat from 15:50, whose next bar ends at 16:00 > 15:55.
            expected = 1 if time(10, 15) <= clock <= time(15, 45) else 0
        else:
            expected = -1 if time(11, 0) <= clock <= time(15, 45) else 0
        assert value == expected, (day, clock)


def test_closes_inside_the_range_keep_the_position_and_a_break_the_other_way_reverses() -> None:
    d = date(2024, 6, 3)
    bars = day_bars(
        d, {time(10, 0): 101.5, time(10, 5): 100.0, time(10, 30): 98.5}, time(9, 30), time(16, 0)
    )
    c = hand_made(bars)
    by_clock = positions_by_clock(c, ORB({"range_minutes": 15}).target_positions(c))
    # Range 09:30-09:40: high 101, low 99.
    assert by_clock[(d, time(9, 55))] == 0
    assert by_clock[(d, time(10, 0))] == 1
    assert by_clock[(d, time(10, 25))] == 1
    assert by_clock[(d, time(10, 30))] == -1
    assert by_clock[(d, time(15, 45))] == -1
    assert by_clock[(d, time(15, 50))] == 0


def test_a_day_without_its_opening_bar_is_not_traded() -> None:
    d1, d2 = date(2024, 1, 2), date(2024, 1, 3)
    # Day 1 starts at 09:45 (data starting mid-range); day 2 is complete.
    bars = day_bars(d1, {time(10, 30): 105.0}, time(9, 45), time(16, 0))
    bars += day_bars(d2, {time(10, 30): 105.0}, time(9, 30), time(16, 0))
    c = hand_made(bars)
    by_clock = positions_by_clock(c, ORB().target_positions(c))
    assert all(v == 0 for (day, _), v in by_clock.items() if day == d1)
    assert by_clock[(d2, time(10, 30))] == 1


def test_gaps_after_the_open_and_a_half_day() -> None:
    # 2024-11-29 closed at 13:00; 09:40 and 11:00-11:25 are missing.
    half = date(2024, 11, 29)
    bars = [
        b
        for b in day_bars(half, {time(9, 40): 150.0, time(10, 10): 103.0}, time(9, 30), time(13, 0))
        if not (time(11, 0) <= datetime.fromtimestamp(b[0] // 10**9, tz=NY).time() < time(11, 30))
        and datetime.fromtimestamp(b[0] // 10**9, tz=NY).time() != time(9, 40)
    ]
    nxt = date(2024, 12, 2)
    bars += day_bars(nxt, {}, time(9, 30), time(16, 0))
    c = hand_made(bars)
    target = ORB().target_positions(c)
    by_clock = positions_by_clock(c, target)
    assert (half, time(9, 40)) not in by_clock  # the 150 close was dropped with its bar
    assert by_clock[(half, time(10, 10))] == 1
    # With a fixed 16:00 close the half day's last bar is still long (documented) ...
    assert by_clock[(half, time(12, 55))] == 1
    # ... and the next session starts flat.
    assert all(v == 0 for (day, clock), v in by_clock.items() if day == nxt and clock < time(10, 0))
    np.testing.assert_array_equal(target, reference_orb(c))


def test_dst_change_moves_the_open_in_utc() -> None:
    bars = day_bars(date(2024, 3, 8), {time(10, 0): 103.0}, time(9, 30), time(16, 0))
    bars += day_bars(date(2024, 3, 11), {time(10, 0): 103.0}, time(9, 30), time(16, 0))
    c = hand_made(bars)
    target = ORB().target_positions(c)
    first_long = [
        datetime.fromtimestamp(int(t) // 10**9, tz=UTC).time()
        for t, prev, v in zip(c.ts[1:], target[:-1], target[1:], strict=True)
        if v == 1 and prev != 1
    ]
    assert first_long == [time(15, 0), time(14, 0)]  # 10:00 EST, then 10:00 EDT


@pytest.mark.parametrize(
    ("params", "bar"),
    [
        ({}, 5.0),
        ({"range_minutes": 60, "exit_minutes_before_close": 30}, 5.0),
        ({"range_minutes": 7, "exit_minutes_before_close": 0}, 5.0),
    ],
)
def test_matches_the_reference_on_random_walks_with_gaps(
    intraday_candles: CandleBuilder, params: dict[str, int], bar: float
) -> None:
    c = intraday_candles(seed=3, days=15, gap_prob=0.05, extended=True)
    got = ORB(params).target_positions(c)
    expected = reference_orb(
        c, params.get("range_minutes", 30), params.get("exit_minutes_before_close", 5), bar
    )
    np.testing.assert_array_equal(got, expected)
    assert {-1, 1} <= set(got.tolist())


def test_other_session_hours(make_walk: Callable[..., CandleArrays]) -> None:
    zone = ZoneInfo("Europe/London")
    ts = []
    for d in (date(2024, 7, 1), date(2024, 7, 2), date(2024, 7, 3)):
        t = datetime.combine(d, time(8, 0), tzinfo=zone)
        while t.time() < time(16, 30):
            ts.append(int(t.timestamp()) * 10**9)
            t += timedelta(minutes=15)
    c = make_walk(ts, 9, Timeframe.M15)
    params = {
        "tz": "Europe/London",
        "session_open": "08:00",
        "session_close": "16:30",
        "range_minutes": 45,
        "exit_minutes_before_close": 15,
    }
    got = ORB(params).target_positions(c)
    np.testing.assert_array_equal(
        got, reference_orb(c, 45, 15, 15.0, "Europe/London", (8, 0), (16, 30))
    )


def test_without_a_timeframe_the_bar_length_is_learned_from_the_data(
    intraday_candles: CandleBuilder,
) -> None:
    with_tf = intraday_candles(seed=5, days=5)
    without = intraday_candles(seed=5, days=5, timeframe=None)
    a = ORB().target_positions(with_tf)
    b = ORB().target_positions(without)
    # Bar 0 cannot know the bar length, every later bar can; the first day's range is
    # still the same because the opening bar is bar 0 in both.
    np.testing.assert_array_equal(a, b)


def test_daily_bars_are_refused(make_walk: Callable[..., CandleArrays]) -> None:
    ts = [int(datetime(2024, 1, d, tzinfo=UTC).timestamp()) * 10**9 for d in range(2, 20)]
    with pytest.raises(StrategyError, match="needs intraday bars, got D1"):
        ORB().target_positions(make_walk(ts, 1, Timeframe.D1))
    assert ORB.intraday is True
