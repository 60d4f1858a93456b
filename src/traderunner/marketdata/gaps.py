"""Holes in a candle series: missing sessions, missing bars inside sessions, duplicates.

:func:`find_gaps` compares bars with the trading sessions they should fill (by default the US
equity regular session, 09:30-16:00 America/New_York, Monday to Friday; see
:mod:`traderunner.domain.sessions`):

* a **missing session** is a weekday whose session has no bar in it (intraday), or a weekday
  without a bar stamped on that UTC date (D1). Exchange holidays are not known, so they show
  up here too: a single missing weekday is usually a holiday;
* a **gap** is a run of missing bars inside a session that has bars: between two bars more
  than one bar apart, after the open before the first bar, or before the close after the last
  bar (so a half day shows a gap to 16:00; half days are not known either);
* **duplicates** are timestamps present more than once (the store cannot hold them, but a
  CandleArrays built by hand can);
* bars outside the session hours (pre- and post-market) are counted, not judged.

The checked range is the first to the last bar, or ``[start_ns, end_ns]`` when given (then
sessions before the first or after the last bar count as missing too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd

from traderunner.domain.candles import CandleArrays
from traderunner.domain.sessions import (
    NS_PER_DAY,
    NS_PER_MINUTE,
    US_EQUITY,
    SessionHours,
    in_session,
    session_ids,
)
from traderunner.domain.timeframe import Timeframe

IntArray = npt.NDArray[np.int64]
NS = 1_000_000_000
_EPOCH_DAY = date(1970, 1, 1)


def day_date(day: int) -> date:
    """Days since 1970-01-01 -> the date."""
    return _EPOCH_DAY + timedelta(days=int(day))


@dataclass(frozen=True, slots=True)
class SessionGap:
    """Bars missing inside one session: open times ``start_ns`` to ``end_ns``, ``bars`` of them."""

    session: date
    start_ns: int
    end_ns: int
    bars: int


@dataclass(frozen=True, slots=True)
class GapReport:
    """What :func:`find_gaps` found (see the module docstring for the definitions)."""

    symbol: str
    timeframe: Timeframe
    hours: SessionHours
    start_ns: int | None
    end_ns: int | None
    bars: int
    sessions_checked: int
    missing_sessions: tuple[date, ...]
    gaps: tuple[SessionGap, ...]
    duplicates: tuple[int, ...]
    outside_session: int

    @property
    def missing_bars(self) -> int:
        """Bars missing inside sessions that have bars (not counting missing sessions)."""
        return sum(g.bars for g in self.gaps)

    @property
    def clean(self) -> bool:
        """No missing session, no gap and no duplicate."""
        return not (self.missing_sessions or self.gaps or self.duplicates)

    def missing_runs(self) -> tuple[tuple[date, date], ...]:
        """Missing sessions grouped into runs of consecutive weekdays, ``(first, last)``."""
        runs: list[tuple[date, date]] = []
        for day in self.missing_sessions:
            if runs and int(np.busday_count(runs[-1][1], day)) == 1:
                runs[-1] = (runs[-1][0], day)
            else:
                runs.append((day, day))
        return tuple(runs)


def session_bounds(
    days: npt.ArrayLike, timeframe: Timeframe, hours: SessionHours = US_EQUITY
) -> tuple[IntArray, IntArray]:
    """``(open_ns, close_ns)`` in UTC of each session day (days since 1970-01-01).

    Intraday: the session's local open and close, converted with the IANA database. D1: the
    UTC day, ``[00:00, 24:00)``.
    """
    d = np.asarray(days, dtype=np.int64)
    if not timeframe.is_intraday:
        return d * NS_PER_DAY, (d + 1) * NS_PER_DAY

    def utc(minute: int) -> IntArray:
        if len(d) == 0:
            return d.copy()
        wall = pd.DatetimeIndex((d * NS_PER_DAY + minute * NS_PER_MINUTE).view("datetime64[ns]"))
        local = wall.tz_localize(
            hours.tz, ambiguous=np.zeros(len(d), dtype=bool), nonexistent="shift_forward"
        )
        return np.asarray(local.tz_convert("UTC").as_unit("ns").asi8, dtype=np.int64)

    return utc(hours.open_minute), utc(hours.close_minute)


def expected_sessions(
    start_ns: int, end_ns: int, timeframe: Timeframe, hours: SessionHours = US_EQUITY
) -> IntArray:
    """Weekday session days (days since 1970-01-01) that overlap ``[start_ns, end_ns]``."""
    if start_ns > end_ns:
        return np.zeros(0, dtype=np.int64)
    # Local dates can differ from UTC dates by a day either way: look one day wider.
    first, last = start_ns // NS_PER_DAY - 1, end_ns // NS_PER_DAY + 1
    days = np.arange(first, last + 1, dtype=np.int64)
    days = days[(days + 3) % 7 < 5]  # 1970-01-01 was a Thursday; Monday = 0
    open_ns, close_ns = session_bounds(days, timeframe, hours)
    return days[(open_ns <= end_ns) & (close_ns > start_ns)]


def find_gaps(
    candles: CandleArrays,
    timeframe: Timeframe | str | None = None,
    sessions: SessionHours = US_EQUITY,
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> GapReport:
    """Missing sessions, gaps inside sessions and duplicates of ``candles``.

    ``timeframe`` defaults to ``candles.timeframe``; bars are taken in time order whatever
    order they come in. An empty series with no range gives an empty, clean report.
    """
    raw = candles.timeframe if timeframe is None else timeframe
    if raw is None:
        from traderunner.errors import DataRangeError

        raise DataRangeError("find_gaps needs a timeframe: pass timeframe=Timeframe.M5")
    tf = Timeframe.parse(raw)
    ts_all = np.sort(np.asarray(candles.ts, dtype=np.int64))
    repeated = ts_all[1:][ts_all[1:] == ts_all[:-1]] if len(ts_all) > 1 else ts_all[:0]
    duplicates = tuple(int(t) for t in np.unique(repeated))
    ts = np.unique(ts_all)
    if start_ns is not None:
        ts = ts[ts >= start_ns]
    if end_ns is not None:
        ts = ts[ts <= end_ns]
    if tf.is_intraday:
        inside = in_session(ts, sessions)
        outside = int(np.count_nonzero(~inside))
        ts = ts[inside]
        days = session_ids(ts, sessions.tz)
    else:
        outside = 0
        days = ts // NS_PER_DAY
    lo = start_ns if start_ns is not None else (int(ts[0]) if len(ts) else None)
    hi = end_ns if end_ns is not None else (int(ts[-1]) if len(ts) else None)
    expected = (
        expected_sessions(lo, hi, tf, sessions)
        if lo is not None and hi is not None
        else np.zeros(0, dtype=np.int64)
    )
    present, first_idx = np.unique(days, return_index=True)
    missing = np.setdiff1d(expected, present, assume_unique=True)
    gaps = _gaps(ts, days, present, first_idx, tf, sessions, start_ns, end_ns)
    return GapReport(
        symbol=candles.symbol,
        timeframe=tf,
        hours=sessions,
        start_ns=start_ns,
        end_ns=end_ns,
        bars=len(candles),
        sessions_checked=len(np.union1d(expected, present)),
        missing_sessions=tuple(day_date(int(d)) for d in missing),
        gaps=gaps,
        duplicates=duplicates,
        outside_session=outside,
    )


def _gaps(
    ts: IntArray,
    days: IntArray,
    present: IntArray,
    first_idx: npt.NDArray[np.intp],
    tf: Timeframe,
    hours: SessionHours,
    start_ns: int | None,
    end_ns: int | None,
) -> tuple[SessionGap, ...]:
    if not tf.is_intraday or len(ts) == 0:
        return ()
    step = tf.seconds * NS
    found: list[tuple[int, int, int, int]] = []  # (start_ns, end_ns, bars, day)
    # Inside a session: consecutive bars more than one bar apart.
    diffs = np.diff(ts)
    same_day = days[1:] == days[:-1]
    for i in np.flatnonzero(same_day & (diffs > step)):
        bars = int((diffs[i] - 1) // step)
        if bars > 0:
            prev = int(ts[i])
            found.append((prev + step, prev + bars * step, bars, int(days[i])))
    # At the edges of each session: after the open, before the close (clipped to the range).
    open_ns, close_ns = session_bounds(present, tf, hours)
    if start_ns is not None:
        open_ns = np.maximum(open_ns, start_ns)
    if end_ns is not None:
        close_ns = np.minimum(close_ns, end_ns + 1)
    last_idx = np.append(first_idx[1:] - 1, len(ts) - 1)
    first_ts, last_ts = ts[first_idx], ts[last_idx]
    lead = (first_ts - open_ns) // step
    trail = (close_ns - last_ts - 1) // step
    for k in np.flatnonzero(lead > 0):
        bars = int(lead[k])
        first = int(first_ts[k])
        found.append((first - bars * step, first - step, bars, int(present[k])))
    for k in np.flatnonzero(trail > 0):
        bars = int(trail[k])
        last = int(last_ts[k])
        found.append((last + step, last + bars * step, bars, int(present[k])))
    found.sort()
    return tuple(SessionGap(day_date(d), s, e, b) for s, e, b, d in found)
