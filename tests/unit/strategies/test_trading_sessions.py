"""domain.sessions: local trading dates and session clock times from UTC bar timestamps."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from traderunner.domain.sessions import (
    US_EQUITY,
    SessionHours,
    bar_minutes,
    bars_into_session,
    in_session,
    local_clock,
    minutes_since_open,
    minutes_to_session_end,
    new_session,
    parse_clock,
    session_ids,
)
from traderunner.errors import ParameterError

NY = ZoneInfo("America/New_York")
UTC = ZoneInfo("UTC")
EPOCH = date(1970, 1, 1)


def ns(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def test_the_open_is_0930_new_york_on_both_sides_of_a_dst_change() -> None:
    # US DST started on 2024-03-10: the open moves from 14:30 UTC to 13:30 UTC.
    friday = ns(datetime(2024, 3, 8, 14, 30, tzinfo=UTC))
    monday = ns(datetime(2024, 3, 11, 13, 30, tzinfo=UTC))
    ts = np.array([friday, monday])
    np.testing.assert_array_equal(minutes_since_open(ts), [0.0, 0.0])
    np.testing.assert_array_equal(minutes_to_session_end(ts), [390.0, 390.0])
    ids = session_ids(ts)
    assert ids.dtype == np.int64
    assert list(ids) == [(date(2024, 3, 8) - EPOCH).days, (date(2024, 3, 11) - EPOCH).days]


def test_session_id_changes_at_local_midnight_not_utc_midnight() -> None:
    before = ns(datetime(2024, 1, 2, 4, 59, tzinfo=UTC))  # 23:59 on Jan 1 in New York
    after = ns(datetime(2024, 1, 2, 5, 0, tzinfo=UTC))  # 00:00 on Jan 2 in New York
    utc_midnight = ns(datetime(2024, 1, 2, 0, 0, tzinfo=UTC))  # still Jan 1 in New York
    ids = session_ids(np.array([utc_midnight, before, after]))
    assert ids[0] == ids[1]
    assert ids[2] == ids[1] + 1
    np.testing.assert_array_equal(new_session(np.array([utc_midnight, before, after])), [1, 0, 1])


def test_session_ids_do_not_depend_on_the_window_loaded() -> None:
    ts = np.array(
        [ns(datetime(2024, 5, d, 14, 0, tzinfo=UTC)) for d in (1, 1, 2, 3)], dtype=np.int64
    )
    ts[1] += 300 * 10**9
    full = session_ids(ts)
    np.testing.assert_array_equal(session_ids(ts[2:]), full[2:])


def test_bars_into_session_counts_bars_that_exist() -> None:
    clocks = [(2, 9, 30), (2, 9, 35), (2, 9, 50), (3, 9, 40), (3, 9, 45)]
    ts = np.array([ns(datetime(2024, 1, d, h, m, tzinfo=NY)) for d, h, m in clocks])
    np.testing.assert_array_equal(bars_into_session(ts), [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(minutes_since_open(ts), [0, 5, 20, 10, 15])


def test_in_session_boundaries() -> None:
    clocks = [time(9, 29), time(9, 30), time(15, 59), time(16, 0), time(20, 0)]
    ts = np.array([ns(datetime.combine(date(2024, 7, 1), c, tzinfo=NY)) for c in clocks])
    np.testing.assert_array_equal(in_session(ts), [False, True, True, False, False])
    np.testing.assert_array_equal(minutes_to_session_end(ts), [391, 390, 1, 0, -240])


def test_other_exchanges_hours() -> None:
    london = SessionHours(tz="Europe/London", open="08:00", close="16:30")  # type: ignore[arg-type]
    assert london.minutes == 510
    # 08:00 in London is 07:00 UTC in summer (BST).
    ts = np.array([ns(datetime(2024, 7, 1, 7, 0, tzinfo=UTC))])
    np.testing.assert_array_equal(minutes_since_open(ts, london), [0.0])
    np.testing.assert_array_equal(in_session(ts, london), [True])


@pytest.mark.parametrize(
    ("build", "needle"),
    [
        (lambda: SessionHours(tz="Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
        (lambda: SessionHours(open=time(16, 0), close=time(9, 30)), "must be before its close"),
        (lambda: parse_clock("9h30"), "HH:MM"),
        (lambda: parse_clock("25:00"), "HH:MM"),
        (lambda: session_ids(np.array([0]), tz="Nowhere"), "IANA"),
    ],
)
def test_bad_session_input_is_one_clear_parameter_error(build: object, needle: str) -> None:
    with pytest.raises(ParameterError) as err:
        build()  # type: ignore[operator]
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_empty_input() -> None:
    empty = np.array([], dtype=np.int64)
    assert len(session_ids(empty)) == 0
    assert len(bars_into_session(empty)) == 0
    assert len(minutes_since_open(empty)) == 0
    assert len(bar_minutes(empty)) == 0


def test_bar_minutes_from_timeframe_or_from_the_gaps_seen_so_far() -> None:
    base = ns(datetime(2024, 1, 2, 14, 30, tzinfo=UTC))
    minute = 60 * 10**9
    ts = np.array([base, base + 15 * minute, base + 20 * minute, base + 30 * minute])
    np.testing.assert_array_equal(bar_minutes(ts, 300), [5, 5, 5, 5])
    # Bar 0 has nothing to compare with; later bars know the smallest gap so far.
    np.testing.assert_array_equal(bar_minutes(ts), [1, 15, 5, 5])


@given(
    st.lists(
        st.integers(min_value=946_684_800, max_value=1_893_456_000), min_size=1, max_size=40
    ).map(sorted),
    st.sampled_from(["America/New_York", "Europe/London", "Asia/Tokyo", "Australia/Sydney"]),
)
def test_local_clock_agrees_with_zoneinfo(seconds: list[int], tz: str) -> None:
    ts = np.array(seconds, dtype=np.int64) * 1_000_000_000
    day, minute = local_clock(ts, tz)
    zone = ZoneInfo(tz)
    for i, s in enumerate(seconds):
        local = datetime.fromtimestamp(s, tz=UTC).astimezone(zone)
        assert day[i] == (local.date() - EPOCH).days
        # float minutes: (h*60 + m) + s/60 and the code's seconds/60 may differ in the last bit
        assert minute[i] == pytest.approx(local.hour * 60 + local.minute + local.second / 60.0)
    hours = SessionHours(tz=tz)
    np.testing.assert_allclose(minutes_since_open(ts, hours), minute - hours.open_minute)


def test_default_hours_are_the_us_equity_session() -> None:
    assert US_EQUITY.tz == "America/New_York"
    assert (US_EQUITY.open_minute, US_EQUITY.close_minute, US_EQUITY.minutes) == (570, 960, 390)
