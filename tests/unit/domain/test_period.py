"""Period.parse: what users type for --from/--to becomes an inclusive UTC window."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from traderunner.domain.period import Period
from traderunner.errors import DataRangeError, UserInputError

NS_PER_DAY = 86_400 * 10**9


def test_dates_give_the_whole_days_inclusive() -> None:
    p = Period.parse("2024-01-02", "2024-01-03")
    assert p.start == datetime(2024, 1, 2, tzinfo=UTC)
    assert p.end is not None
    assert p.end.date() == date(2024, 1, 3)
    assert p.start_ns == pd.Timestamp("2024-01-02", tz="UTC").value
    # The end is the very last nanosecond of 3 January.
    assert p.end_ns == pd.Timestamp("2024-01-04", tz="UTC").value - 1


def test_same_day_is_one_whole_day() -> None:
    p = Period.parse("2024-03-05", "2024-03-05")
    assert p.start_ns is not None
    assert p.end_ns is not None
    assert p.end_ns - p.start_ns == NS_PER_DAY - 1


def test_unbounded_sides_are_none() -> None:
    p = Period.parse(None, None)
    assert (p.start, p.end, p.start_ns, p.end_ns) == (None, None, None, None)
    assert Period.parse("", "  ").start is None
    only_end = Period.parse(None, "2024-01-02")
    assert only_end.start is None
    assert only_end.end_ns is not None
    assert p.describe() == "all data"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T14:30", pd.Timestamp("2024-01-02 14:30", tz="UTC")),
        ("2024-01-02 14:30:15", pd.Timestamp("2024-01-02 14:30:15", tz="UTC")),
        ("2024-01-02T14:30:00Z", pd.Timestamp("2024-01-02 14:30", tz="UTC")),
        ("2024-01-02T09:30-05:00", pd.Timestamp("2024-01-02 14:30", tz="UTC")),
        ("2024-01-02T14:30:00.123456+00:00", pd.Timestamp("2024-01-02 14:30:00.123456", tz="UTC")),
    ],
)
def test_iso_datetimes_are_exact_and_converted_to_utc(text: str, expected: pd.Timestamp) -> None:
    p = Period.parse(text, text)
    assert p.start_ns == expected.value
    # An explicit time is used as is, not stretched to the end of the day.
    assert p.end_ns == expected.value
    assert p.start is not None
    assert p.start.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("start", "end", "needle"),
    [
        ("yesterday", None, "--from 'yesterday'"),
        (None, "2024-13-01", "--to '2024-13-01'"),
        ("2024-02-30", None, "not a real date"),
        ("2024/01/02", None, "YYYY-MM-DD"),
        ("2024-01-05", "2024-01-04", "after its end"),
        ("2024-01-04T12:00", "2024-01-04T11:59", "after its end"),
    ],
)
def test_bad_text_and_reversed_periods_raise_one_clear_line(
    start: str | None, end: str | None, needle: str
) -> None:
    with pytest.raises(DataRangeError) as info:
        Period.parse(start, end)
    message = str(info.value)
    assert needle in message
    assert "\n" not in message
    assert isinstance(info.value, UserInputError)


def test_end_date_equal_to_start_datetime_same_day_is_fine() -> None:
    # --from 2024-01-04T15:00 --to 2024-01-04 : the end date covers the whole day.
    p = Period.parse("2024-01-04T15:00", "2024-01-04")
    assert p.start_ns is not None
    assert p.end_ns is not None
    assert p.start_ns < p.end_ns


def test_naive_datetimes_are_refused_when_built_directly() -> None:
    naive = datetime(2024, 1, 2)  # noqa: DTZ001 - the point of the test
    with pytest.raises(DataRangeError, match="no time zone"):
        Period(start=naive)


def test_direct_construction_normalises_to_utc_and_is_frozen() -> None:
    plus2 = timezone(timedelta(hours=2))
    p = Period(start=datetime(2024, 1, 2, 12, tzinfo=plus2), end=None)
    assert p.start == datetime(2024, 1, 2, 10, tzinfo=UTC)
    assert p.start is not None
    assert p.start.tzinfo is UTC
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.start = None  # type: ignore[misc]
    assert not hasattr(p, "__dict__")  # slotted


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
        max_value=datetime(2200, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    )
)
def test_ns_matches_pandas_for_any_datetime(moment: datetime) -> None:
    text = moment.isoformat()
    p = Period.parse(text, text)
    assert p.start_ns == pd.Timestamp(moment).value
    assert p.end_ns == p.start_ns


@given(st.dates(min_value=date(1971, 1, 1), max_value=date(2200, 1, 1)))
def test_whole_day_window_selects_exactly_that_days_bars(day: date) -> None:
    p = Period.parse(day.isoformat(), day.isoformat())
    midnight = pd.Timestamp(day, tz="UTC").value
    # Bars at the previous day's last ns, midnight, the day's last ns and the next midnight.
    ts = np.array([midnight - 1, midnight, midnight + NS_PER_DAY - 1, midnight + NS_PER_DAY])
    assert p.start_ns is not None
    assert p.end_ns is not None
    inside = (ts >= p.start_ns) & (ts <= p.end_ns)
    assert inside.tolist() == [False, True, True, False]
