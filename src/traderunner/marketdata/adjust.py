"""Split- and dividend-adjusted daily prices from EODHD's ``adjusted_close``.

EODHD's end-of-day open, high, low and close are **raw** (as traded that day), its volume is
split-adjusted, and ``adjusted_close`` is adjusted for splits and dividends. A daily backtest
over raw prices sees a 4:1 split as a 75 % crash that never happened, so daily backtests adjust
by default. Modes (``--adjust``, the job spec's ``adjust``):

* ``all`` (default): every price of a bar times its factor ``adjusted_close / close``, so the
  series is split- *and* dividend-adjusted (total return, as EODHD's adjusted close);
* ``splits``: only the factor's steps of more than :data:`SPLIT_STEP` (20 %) between two
  consecutive bars are applied (snapped to a simple ratio such as 4/1 or 1/10): splits and
  reverse splits, not dividends (no dividend moves a factor that far; a special dividend that
  does is taken for a split);
* ``none``: raw prices.

Only daily (D1) series with stored adjusted closes are adjusted; intraday bars and data from
other sources are used as they are, and the result says so per symbol (``"none (intraday)"``,
``"none (no adjusted closes stored)"``). A bar without an adjusted close takes the factor of the
next bar that has one (the newest bars, factor 1, when none follows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from fractions import Fraction

import numpy as np

from traderunner.domain.adjust import ADJUST_MODES, DEFAULT_ADJUST, parse_adjust
from traderunner.domain.candles import CandleArrays
from traderunner.domain.timeframe import Timeframe
from traderunner.store import Store

SPLIT_STEP = 0.20


def check_adjust(mode: str | None) -> str:
    """``mode`` as one of :data:`ADJUST_MODES` (None: the default), else OptionError."""
    return parse_adjust(mode)


def factors(close: np.ndarray, adjusted: np.ndarray, mode: str) -> np.ndarray:
    """The multiplier of each bar's prices for ``mode`` (see the module docstring)."""
    n = len(close)
    raw = np.where(
        np.isfinite(adjusted) & (close > 0), adjusted / np.where(close > 0, close, 1), np.nan
    )
    # A bar without an adjusted close takes the next known factor (backward fill), else 1.
    out = np.ones(n, dtype=np.float64)
    following = 1.0
    for i in range(n - 1, -1, -1):
        if np.isfinite(raw[i]) and raw[i] > 0:
            following = float(raw[i])
        out[i] = following
    if mode == "all":
        return out
    if mode == "none":
        return np.ones(n, dtype=np.float64)
    split = np.ones(n, dtype=np.float64)
    for i in range(n - 2, -1, -1):
        step = out[i] / out[i + 1]
        if abs(np.log(step)) > np.log1p(SPLIT_STEP):
            step = float(Fraction(step).limit_denominator(50))
        else:
            step = 1.0
        split[i] = split[i + 1] * step
    return split


def adjust_series(candles: CandleArrays, adjusted: np.ndarray, mode: str) -> CandleArrays:
    """``candles`` with open, high, low and close times the ``mode`` factors (volume as is)."""
    f = factors(candles.close, adjusted, mode)
    if bool(np.all(f == 1.0)):
        return candles
    return replace(
        candles,
        open=candles.open * f,
        high=candles.high * f,
        low=candles.low * f,
        close=candles.close * f,
        meta={**candles.meta, "adjust": mode},
    )


def apply_adjustment(
    store: Store, candles: Mapping[str, CandleArrays], mode: str | None
) -> tuple[dict[str, CandleArrays], dict[str, str]]:
    """Each series adjusted by ``mode`` where possible; and what was applied, per symbol."""
    chosen = check_adjust(mode)
    out: dict[str, CandleArrays] = {}
    applied: dict[str, str] = {}
    for symbol, series in candles.items():
        if chosen == "none" or len(series) == 0:
            out[symbol], applied[symbol] = series, "none"
            continue
        if series.timeframe is not Timeframe.D1:
            out[symbol], applied[symbol] = series, "none (intraday)"
            continue
        ts, values = store.adjusted.load(symbol, int(series.ts[0]), int(series.ts[-1]))
        if not len(ts):
            out[symbol], applied[symbol] = series, "none (no adjusted closes stored)"
            continue
        aligned = np.full(len(series), np.nan)
        where = np.searchsorted(series.ts, ts)
        hit = (where < len(series)) & (series.ts[np.minimum(where, len(series) - 1)] == ts)
        aligned[where[hit]] = values[hit]
        out[symbol], applied[symbol] = adjust_series(series, aligned, chosen), chosen
    return out, applied


def describe(applied: Mapping[str, str]) -> str:
    """One value when every symbol got the same adjustment, else ``SYM=mode, ...``."""
    kinds = set(applied.values())
    if len(kinds) == 1:
        return kinds.pop()
    return ", ".join(f"{s}={m}" for s, m in applied.items())


__all__ = ["ADJUST_MODES", "DEFAULT_ADJUST", "apply_adjustment", "check_adjust", "describe"]
