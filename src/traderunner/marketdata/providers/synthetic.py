"""Deterministic synthetic candles: realistic-looking, reproducible, labelled ``synthetic``.

The model, per symbol (all of its randomness is seeded from ``zlib.crc32(symbol)`` and
``seed``, never from Python's salted ``hash()``):

* **Daily closes** follow a mean-reverting random walk of the log price (half-life about two
  years, so prices stay in a plausible band around the symbol's base price), one step per
  weekday counted from 1990-01-01. Step ``i`` always uses draw ``i`` of one per-symbol random
  stream, so a day's close does not depend on which range was asked for.
* **Each weekday** gets its own generator seeded by ``(symbol, seed, date)``: an overnight gap
  from the previous close to the day's open, then a one-minute path from that open to the
  day's close (a Brownian bridge with the U-shaped intraday volatility of US equities: busy
  at the open and the close, quiet at lunch). Minute highs and lows add wicks beyond the open
  and close; volume is U-shaped too and grows with the size of the move.
* **Bars** of every timeframe are aggregated from those minutes (open of the first, max of
  the highs, min of the lows, close of the last, sum of volumes), so an M15 bar is exactly
  the three M5 bars it spans, and a D1 bar is the whole session.

Intraday bars exist only within the regular session, 09:30-16:00 America/New_York, Monday
to Friday, converted to UTC with the IANA database (so daylight-saving changes move the bars
from 14:30 UTC to 13:30 UTC). A bar whose span would pass 16:00 is shortened (H1 has a 15:30
half bar). D1 bars are stamped at 00:00 UTC of their date. Exchange holidays are not modelled.
Prices are rounded to cents; rounding is monotonic, so ``low <= open, close <= high`` holds.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import accumulate
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from traderunner.domain.candles import CandleArrays
from traderunner.domain.sessions import US_EQUITY
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import DataRangeError

SOURCE = "synthetic"
FIRST_DATE = date(1990, 1, 1)  # a Monday: weekday index 0 of the daily walk
LAST_DATE = date(2099, 12, 31)
SESSION_MINUTES = US_EQUITY.minutes  # 390
_NS = 1_000_000_000
_NS_PER_MINUTE = 60 * _NS
_TRADING_DAYS = 252
_HALF_LIFE_DAYS = 500  # of the log price's pull back to the base price
_PHI = 0.5 ** (1 / _HALF_LIFE_DAYS)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class _Profile:
    """A symbol's character: where it trades, how much it moves, how much it trades."""

    base_price: float
    annual_vol: float
    minute_volume: float


def _symbol_key(symbol: str) -> int:
    return zlib.crc32(symbol.encode("utf-8"))


@lru_cache(maxsize=256)
def _profile(symbol: str) -> _Profile:
    rng = np.random.default_rng([_symbol_key(symbol), 0x51F7])
    return _Profile(
        base_price=float(np.exp(rng.uniform(np.log(15.0), np.log(600.0)))),
        annual_vol=float(rng.uniform(0.18, 0.55)),
        minute_volume=float(np.exp(rng.uniform(np.log(2_000.0), np.log(60_000.0)))),
    )


@lru_cache(maxsize=64)
def _daily_log_closes(symbol: str, seed: int, n_days: int) -> FloatArray:
    """Log close of weekdays ``0 .. n_days-1`` counted from FIRST_DATE (a prefix-stable walk)."""
    profile = _profile(symbol)
    sigma = profile.annual_vol / np.sqrt(_TRADING_DAYS)
    shocks = np.random.default_rng([_symbol_key(symbol), seed, 1]).standard_normal(n_days)
    # AR(1) deviation from the base price; accumulate keeps it exact and range-independent.
    deviation = np.fromiter(
        accumulate((sigma * shocks).tolist(), lambda x, e: _PHI * x + e),
        dtype=np.float64,
        count=n_days,
    )
    out = np.log(profile.base_price) + deviation
    out.flags.writeable = False
    return out


def _intraday_shape() -> tuple[FloatArray, FloatArray]:
    """(volatility weight, volume weight) per session minute, both U-shaped, mean 1."""
    x = (np.arange(SESSION_MINUTES) + 0.5) / SESSION_MINUTES
    u = (2 * x - 1) ** 2
    vol = np.sqrt(0.55 + 1.6 * u)
    vol /= np.sqrt(np.mean(vol**2))
    volume = 0.5 + 2.2 * u**1.5
    volume[-10:] *= 1.6  # the closing auction rush
    return vol, volume / volume.mean()


_VOL_SHAPE, _VOLUME_SHAPE = _intraday_shape()


def _day_minutes(
    symbol: str, seed: int, day: date, prev_log_close: float, log_close: float
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """The 390 one-minute bars of ``day`` as (open, high, low, close, volume), unrounded."""
    profile = _profile(symbol)
    rng = np.random.default_rng([_symbol_key(symbol), seed, 2, day.toordinal()])
    daily_sigma = profile.annual_vol / np.sqrt(_TRADING_DAYS)
    minute_sigma = daily_sigma / np.sqrt(SESSION_MINUTES)
    gap = rng.standard_normal() * daily_sigma * 0.3
    steps = rng.standard_normal(SESSION_MINUTES) * minute_sigma * _VOL_SHAPE
    wick_up = np.abs(rng.standard_normal(SESSION_MINUTES)) * minute_sigma * _VOL_SHAPE * 0.6
    wick_down = np.abs(rng.standard_normal(SESSION_MINUTES)) * minute_sigma * _VOL_SHAPE * 0.6
    noise = rng.standard_normal(SESSION_MINUTES)

    log_open = prev_log_close + gap
    walk = np.cumsum(steps)
    t = np.arange(1, SESSION_MINUTES + 1) / SESSION_MINUTES
    # Brownian bridge: the walk, bent so that minute 390 closes exactly at the daily close.
    path = log_open + t * (log_close - log_open) + walk - t * walk[-1]
    closes = np.exp(path)
    opens = np.empty_like(closes)
    opens[0] = np.exp(log_open)
    opens[1:] = closes[:-1]
    highs = np.maximum(opens, closes) * np.exp(wick_up)
    lows = np.minimum(opens, closes) * np.exp(-wick_down)
    move = np.abs(np.diff(path, prepend=log_open)) / minute_sigma
    volume = profile.minute_volume * _VOLUME_SHAPE * np.exp(0.35 * noise) * (0.6 + 0.4 * move)
    return opens, highs, lows, closes, volume


def _to_utc(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise DataRangeError(f"{what} must be a datetime, got {type(value).__name__}")
    # A naive datetime is taken as UTC, as everywhere in traderunner.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ns(value: datetime) -> int:
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta // timedelta(microseconds=1)) * 1_000


def _session_open_ns(days: list[date]) -> npt.NDArray[np.int64]:
    tz = ZoneInfo(US_EQUITY.tz)
    hour, minute = US_EQUITY.open.hour, US_EQUITY.open.minute
    return np.array(
        [
            _ns(datetime(d.year, d.month, d.day, hour, minute, tzinfo=tz).astimezone(UTC))
            for d in days
        ],
        dtype=np.int64,
    )


def synthetic_candles(
    symbol: str, timeframe: Timeframe, start: datetime, end: datetime, seed: int = 0
) -> CandleArrays:
    """Synthetic bars of ``symbol`` whose open time lies in ``[start, end]`` (both inclusive).

    Deterministic: the same symbol, seed and bar always get the same values, whatever range
    is asked for (a sub-range is exactly the matching slice of a longer range). Naive
    datetimes are UTC. ``source`` is ``"synthetic"``. Raises DataRangeError for an empty
    symbol, ``start > end`` or dates outside 1990-2099; an empty result (a weekend) is allowed.
    """
    name = str(symbol).strip()
    if not name:
        raise DataRangeError("synthetic data needs a symbol name, e.g. AAPL")
    tf = Timeframe.parse(timeframe)
    lo, hi = _to_utc(start, "start"), _to_utc(end, "end")
    if lo > hi:
        raise DataRangeError(
            f"start {lo.isoformat()} is after end {hi.isoformat()}: swap the two dates"
        )
    if lo.date() < FIRST_DATE or hi.date() > LAST_DATE:
        raise DataRangeError(
            f"synthetic data covers {FIRST_DATE} to {LAST_DATE}; "
            f"{lo.date()} .. {hi.date()} is outside it: choose dates inside"
        )
    first_day, last_day = lo.date(), hi.date()
    days = [
        first_day + timedelta(days=i)
        for i in range((last_day - first_day).days + 1)
        if (first_day + timedelta(days=i)).weekday() < 5
    ]
    empty = np.empty(0, dtype=np.float64)
    if not days:
        return CandleArrays(
            ts=np.empty(0, dtype=np.int64), open=empty, high=empty, low=empty, close=empty,
            volume=empty, symbol=name, timeframe=tf, source=SOURCE, meta={"seed": seed},
        )  # fmt: skip

    index = np.busday_count(FIRST_DATE, np.array(days, dtype="datetime64[D]"))
    log_closes = _daily_log_closes(name, int(seed), int(index[-1]) + 1)
    base = np.log(_profile(name).base_price)
    parts = []
    for day, i in zip(days, index.tolist(), strict=True):
        prev = log_closes[i - 1] if i > 0 else base
        parts.append(_day_minutes(name, int(seed), day, float(prev), float(log_closes[i])))
    o, h, low, c, v = (np.concatenate([p[k] for p in parts]) for k in range(5))
    # Round first, then aggregate: rounding is monotonic, so every bar stays consistent.
    o, h, low, c = (np.maximum(np.round(x, 2), 0.01) for x in (o, h, low, c))
    v = np.round(v)

    per_bar = SESSION_MINUTES if tf is Timeframe.D1 else max(tf.seconds // 60, 1)
    in_day = np.arange(0, SESSION_MINUTES, per_bar)
    starts = (np.arange(len(days))[:, None] * SESSION_MINUTES + in_day[None, :]).ravel()
    ends = np.append(starts[1:], len(o)) - 1
    if tf is Timeframe.D1:
        midnight = np.array(days, dtype="datetime64[D]").astype("datetime64[ns]")
        ts = midnight.astype(np.int64)
    else:
        opens_ns = _session_open_ns(days)
        ts = (opens_ns[:, None] + in_day[None, :] * _NS_PER_MINUTE).ravel()
    bars = CandleArrays(
        ts=np.ascontiguousarray(ts, dtype=np.int64),
        open=o[starts],
        high=np.maximum.reduceat(h, starts),
        low=np.minimum.reduceat(low, starts),
        close=c[ends],
        volume=np.add.reduceat(v, starts),
        symbol=name,
        timeframe=tf,
        source=SOURCE,
        meta={"seed": int(seed)},
    )
    return bars.between(_ns(lo), _ns(hi))


class SyntheticProvider:
    """The deterministic :class:`~traderunner.marketdata.providers.Provider` (no network).

    ``SyntheticProvider(seed=0).fetch("AAPL", Timeframe.M5, start, end)`` is
    :func:`synthetic_candles` with that seed.
    """

    name = SOURCE

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def fetch(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> CandleArrays:
        """Bars of ``symbol`` with open time in ``[start, end]``; see synthetic_candles."""
        return synthetic_candles(symbol, timeframe, start, end, seed=self.seed)

    def __repr__(self) -> str:
        return f"SyntheticProvider(seed={self.seed})"
