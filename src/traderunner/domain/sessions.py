"""Trading sessions: where a trading day starts and ends, computed from bar timestamps.

Pure, vectorised functions over ``ts_ns`` (bar *open* times, int64 nanoseconds since the epoch,
UTC, increasing), as held by :class:`~traderunner.domain.candles.CandleArrays`. Local wall-clock
times come from the IANA time zone database, so daylight-saving changes are handled: 09:30 in
New York is 14:30 UTC in January and 13:30 UTC in July.

Contract, for every function here: element ``t`` of the result depends only on ``ts_ns[t]``
(never on later bars), so strategies built on them stay free of look-ahead.

Sessions have a fixed open and close time (:class:`SessionHours`, by default the US equity
regular session 09:30-16:00 America/New_York). Exchange holidays and half days (e.g. a 13:00
close) are not known here: a day simply has no bars, or its bars stop early while the
functions still measure time to the fixed 16:00 close. Knowing a half day in advance would
need an exchange calendar, and using the day's own last bar would be look-ahead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from traderunner.errors import ParameterError

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

NEW_YORK = "America/New_York"
NS_PER_MINUTE = 60_000_000_000
NS_PER_DAY = 86_400_000_000_000


@lru_cache(maxsize=64)
def check_tz(tz: str) -> str:
    """Return ``tz`` if it is a known IANA time zone name, else raise ParameterError."""
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ParameterError(
            f"unknown time zone {tz!r}: use an IANA name such as {NEW_YORK} or Europe/London"
        ) from None
    return tz


def parse_clock(text: str | time, what: str = "time") -> time:
    """``"09:30"`` (or a ``datetime.time``) -> ``time(9, 30)``; bad text -> ParameterError."""
    if isinstance(text, time):
        return text
    try:
        hours, minutes = str(text).strip().split(":")
        return time(int(hours), int(minutes))
    except (TypeError, ValueError):
        raise ParameterError(
            f"{what} must be a local clock time HH:MM such as 09:30, got {text!r}"
        ) from None


@dataclass(frozen=True, slots=True)
class SessionHours:
    """A daily session: opens at ``open`` and closes at ``close``, local time in ``tz``.

    Both times are on the same local calendar day (``open < close``); overnight sessions are
    not supported.
    """

    tz: str = NEW_YORK
    open: time = time(9, 30)
    close: time = time(16, 0)

    def __post_init__(self) -> None:
        check_tz(self.tz)
        object.__setattr__(self, "open", parse_clock(self.open, "session open"))
        object.__setattr__(self, "close", parse_clock(self.close, "session close"))
        if self.open_minute >= self.close_minute:
            raise ParameterError(
                f"session open {self.open:%H:%M} must be before its close {self.close:%H:%M}"
            )

    @property
    def open_minute(self) -> int:
        """Minutes after local midnight at which the session opens."""
        return self.open.hour * 60 + self.open.minute

    @property
    def close_minute(self) -> int:
        """Minutes after local midnight at which the session closes."""
        return self.close.hour * 60 + self.close.minute

    @property
    def minutes(self) -> int:
        """Length of the session in minutes (390 for 09:30-16:00)."""
        return self.close_minute - self.open_minute


US_EQUITY = SessionHours()


def _as_ts(ts_ns: npt.ArrayLike) -> IntArray:
    return np.asarray(ts_ns, dtype=np.int64)


def local_wall_ns(ts_ns: npt.ArrayLike, tz: str = NEW_YORK) -> IntArray:
    """Local wall-clock time of each timestamp as naive nanoseconds since 1970-01-01 00:00."""
    ts = _as_ts(ts_ns)
    if len(ts) == 0:
        return ts.copy()
    import pandas as pd  # here: importing strategies (to check parameters) needs no pandas

    index = pd.DatetimeIndex(ts.view("datetime64[ns]")).tz_localize("UTC")
    local = index.tz_convert(check_tz(tz)).tz_localize(None).as_unit("ns")
    return np.asarray(local.asi8, dtype=np.int64)


def local_clock(ts_ns: npt.ArrayLike, tz: str = NEW_YORK) -> tuple[IntArray, FloatArray]:
    """``(day, minute)``: the local calendar day (days since 1970-01-01) and minute of day.

    ``minute`` is a float (seconds become fractions), ``0 <= minute < 1440``.
    """
    wall = local_wall_ns(ts_ns, tz)
    day = np.floor_divide(wall, NS_PER_DAY)
    minute = (wall - day * NS_PER_DAY) / NS_PER_MINUTE
    return day.astype(np.int64), minute.astype(np.float64)


def session_ids(ts_ns: npt.ArrayLike, tz: str = NEW_YORK) -> IntArray:
    """One id per local trading date: the local calendar day as days since 1970-01-01.

    The id changes exactly where the local date changes. It is a pure function of each
    timestamp, so the same bar gets the same id whatever window of data was loaded (the live
    service sees only the last bars).
    """
    return local_clock(ts_ns, tz)[0]


def new_session(ts_ns: npt.ArrayLike, tz: str = NEW_YORK) -> BoolArray:
    """True on the first bar of each local trading date present in the data (and on bar 0)."""
    ids = session_ids(ts_ns, tz)
    out = np.ones(len(ids), dtype=np.bool_)
    out[1:] = ids[1:] != ids[:-1]
    return out


def bars_into_session(ts_ns: npt.ArrayLike, tz: str = NEW_YORK) -> IntArray:
    """0 on the first bar of each local date present in the data, then 1, 2, ...

    Counts the bars that exist: a missing bar (a gap) does not take a number. Use
    :func:`minutes_since_open` for clock time into the session.
    """
    starts = new_session(ts_ns, tz)
    n = len(starts)
    positions = np.arange(n, dtype=np.int64)
    first = np.maximum.accumulate(np.where(starts, positions, 0)) if n else positions
    return positions - first


def minutes_since_open(ts_ns: npt.ArrayLike, hours: SessionHours = US_EQUITY) -> FloatArray:
    """Minutes from the session open to each bar's open time (negative before the open)."""
    _, minute = local_clock(ts_ns, hours.tz)
    return minute - hours.open_minute


def minutes_to_session_end(ts_ns: npt.ArrayLike, hours: SessionHours = US_EQUITY) -> FloatArray:
    """Minutes from each bar's open time to the fixed session close (negative after it).

    The close is ``hours.close`` every day (16:00 for US equities), also on half days, which
    cannot be known without an exchange calendar; see the module docstring.
    """
    _, minute = local_clock(ts_ns, hours.tz)
    return hours.close_minute - minute


def in_session(ts_ns: npt.ArrayLike, hours: SessionHours = US_EQUITY) -> BoolArray:
    """True where the bar opens inside the session: ``open <= bar open time < close``."""
    _, minute = local_clock(ts_ns, hours.tz)
    return (minute >= hours.open_minute) & (minute < hours.close_minute)


def bar_minutes(ts_ns: npt.ArrayLike, seconds: int | None = None) -> FloatArray:
    """Length of each bar in minutes.

    With ``seconds`` (the timeframe's bar length) every bar gets it. Without, bar ``t`` gets
    the smallest gap between consecutive timestamps among bars ``0..t`` (causal, and gaps or
    nights only make a gap longer, never shorter); bar 0, with nothing to compare, gets 1.
    """
    ts = _as_ts(ts_ns)
    n = len(ts)
    if seconds is not None:
        return np.full(n, seconds / 60.0)
    out = np.ones(n, dtype=np.float64)
    if n > 1:
        diffs = np.diff(ts).astype(np.float64) / NS_PER_MINUTE
        diffs[diffs <= 0] = np.inf
        out[1:] = np.minimum.accumulate(diffs)
        out[~np.isfinite(out)] = 1.0
    return out
