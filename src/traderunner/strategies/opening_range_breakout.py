"""Opening range breakout: trade the break of the first minutes' high/low, flat by the close."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from traderunner.domain.candles import CandleArrays
from traderunner.domain.sessions import (
    NEW_YORK,
    SessionHours,
    bar_minutes,
    local_clock,
    parse_clock,
)
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import ParameterError, StrategyError
from traderunner.strategies.base import Indicators, SignalArray, Strategy, StrategyParams, param


@dataclass(frozen=True, slots=True)
class OpeningRangeBreakoutParams(StrategyParams):
    range_minutes: int = param(
        30, low=1, high=1440, doc="minutes after the open that form the range"
    )
    exit_minutes_before_close: int = param(
        5, low=0, high=1440, doc="be flat this many minutes before the session close"
    )
    tz: str = param(NEW_YORK, doc="IANA time zone of the session times")
    session_open: str = param("09:30", doc="local session open, HH:MM")
    session_close: str = param("16:00", doc="local session close, HH:MM (fixed, every day)")

    @property
    def hours(self) -> SessionHours:
        """The session these parameters describe."""
        return SessionHours(
            tz=self.tz,
            open=parse_clock(self.session_open, "parameter 'session_open'"),
            close=parse_clock(self.session_close, "parameter 'session_close'"),
        )

    def check(self) -> None:
        hours = self.hours  # validates tz and both clock times
        if self.range_minutes + self.exit_minutes_before_close >= hours.minutes:
            raise ParameterError(
                "opening_range_breakout: range_minutes + exit_minutes_before_close "
                f"({self.range_minutes} + {self.exit_minutes_before_close}) must be shorter "
                f"than the {hours.minutes}-minute session, or no bar could trade"
            )


class OpeningRangeBreakout(Strategy):
    """Intraday breakout of each session's opening range; never holds overnight.

    Times are local wall-clock times in ``tz`` (DST-aware) and bar times are bar *open* times.
    Per local trading date:

    * The **range bars** are the bars that open in ``[open, open + range_minutes)``;
      ``orb_high`` / ``orb_low`` are the highest high / lowest low of those seen so far. A day
      whose opening bar is missing (its first range bar opens one bar length or more after the
      open, e.g. data that starts mid-morning) has no range and is not traded. Other missing
      bars are fine: the range is built from the bars that exist.
    * **Trading bars** open at or after ``open + range_minutes``. On them the target becomes
      +1 (long) on a close above ``orb_high``, -1 (short) on a close below ``orb_low``, and
      otherwise keeps its previous value of the day: a long is held until a close below the
      range low reverses it, or the day ends.
    * **Flat by the close**: the target is 0 on every bar after which the next bar would end
      later than ``close - exit_minutes_before_close``. Whether the engine fills at the next
      bar's open or at this bar's close, the position is then gone by that time (on a regular
      bar grid). With ``exit_minutes_before_close = 0`` and next-open fills the exit happens at
      the next day's first open, so keep it at least one bar long (5 for M5).
    * The target is 0 on range bars, outside the session and at the start of each day.
    * The close is the fixed ``session_close`` every day: on a half day (a 13:00 close) the
      day's bars stop early and the position is closed at the next session's first fill.

    * Warm-up: 0 bars, because the state resets every day. **At the start of the data** the
      first day is traded like any other if its opening bar is present, and skipped if not.

    Bar length comes from ``candles.timeframe``; when it is unset it is taken as the smallest
    gap between timestamps seen so far (look-ahead free). Daily bars are refused.
    """

    name = "opening_range_breakout"
    interface_version = 2
    description = "intraday: long above / short below the opening range, flat before the close"
    Params = OpeningRangeBreakoutParams
    params: OpeningRangeBreakoutParams
    intraday = True

    @property
    def warmup_bars(self) -> int:
        # The range resets every day, so no bars are needed before the first session; a day
        # without its opening bar is skipped by the rule itself.
        return 0

    def history_bars(self, timeframe: Timeframe | None = None) -> int:
        # The target depends only on the bars of its own local date, which lasts at most 25
        # hours (the day daylight saving ends): one more bar than that many bars always holds
        # the whole day and a bar of the day before. Unknown timeframe: one-minute bars.
        seconds = timeframe.seconds if timeframe is not None and timeframe.is_intraday else 60
        return -(-25 * 3600 // seconds) + 1

    def indicators(self, candles: CandleArrays) -> Indicators:
        if candles.timeframe is not None and not candles.timeframe.is_intraday:
            raise StrategyError(
                f"opening_range_breakout needs intraday bars, got {candles.timeframe}: "
                f"choose one of {', '.join(t.value for t in Timeframe if t.is_intraday)}"
            )
        p = self.params
        hours = p.hours
        day, minute = local_clock(candles.ts, hours.tz)
        seconds = candles.timeframe.seconds if candles.timeframe is not None else None
        bar_len = bar_minutes(candles.ts, seconds)
        since_open = minute - hours.open_minute
        in_range = (since_open >= 0) & (since_open < p.range_minutes)
        # The opening bar is the one that covers the session's first minute.
        opening_bar = in_range & (since_open < bar_len)

        import pandas as pd  # here: importing the strategy (to check parameters) needs none

        groups = pd.Series(day)
        seen_open = pd.Series(opening_bar).groupby(groups).cummax().to_numpy(dtype=np.bool_)
        high = pd.Series(np.where(in_range, candles.high, -np.inf)).groupby(groups).cummax()
        low = pd.Series(np.where(in_range, candles.low, np.inf)).groupby(groups).cummin()
        orb_high = np.where(seen_open, high.to_numpy(dtype=np.float64), np.nan)
        orb_low = np.where(seen_open, low.to_numpy(dtype=np.float64), np.nan)
        orb_high[~np.isfinite(orb_high)] = np.nan
        orb_low[~np.isfinite(orb_low)] = np.nan

        cutoff = hours.close_minute - p.exit_minutes_before_close
        tradable = (
            (since_open >= p.range_minutes)
            & (minute + 2.0 * bar_len <= cutoff)
            & ~np.isnan(orb_high)
        )
        return {
            "session": day,
            "orb_high": orb_high,
            "orb_low": orb_low,
            "tradable": tradable,
        }

    def signals(self, candles: CandleArrays, indicators: Indicators) -> SignalArray:
        close = candles.close
        day = indicators["session"]
        tradable = indicators["tradable"].astype(np.bool_)
        n = len(close)
        if n == 0:
            return np.zeros(0, dtype=np.int8)
        with np.errstate(invalid="ignore"):
            event = np.where(
                close > indicators["orb_high"], 1, np.where(close < indicators["orb_low"], -1, 0)
            ).astype(np.int8)
        event[~tradable] = 0
        new_day = np.ones(n, dtype=np.bool_)
        new_day[1:] = day[1:] != day[:-1]
        # A bar resets the state (to its own event, or to 0) when it is not tradable, starts a
        # day or has a breakout; every other bar carries the last such bar's value forward.
        resets = ~tradable | new_day | (event != 0)
        last = np.maximum.accumulate(np.where(resets, np.arange(n), 0))
        return event[last]
