"""Performance metrics from an equity curve and a list of trades.

Definitions (they match empyrical-reloaded's functions given ``annualization =
periods_per_year``; ``tests/unit/engine/test_metrics_vs_empyrical.py`` checks that):

* returns ``r_t = equity_t / equity_{t-1} - 1``, the first bar's return relative to the
  starting cash, so a curve of n bars has n returns;
* ``periods_per_year`` comes from the data's own timestamps: when they span at least 90
  calendar days it is ``bars / (span in days / 365.25)`` (only bars that exist count, so
  sessions and weekends are respected); otherwise the median number of bars per UTC date times
  365 if any bar falls on a Saturday or Sunday, else times 252;
* ``total_return = end/start - 1``; ``cagr = (end/start)^(periods_per_year/n) - 1``;
  ``annual_volatility = std(r, ddof=1) * sqrt(ppy)``; ``sharpe = mean(r)/std(r, ddof=1) *
  sqrt(ppy)`` (risk-free rate 0); ``sortino = mean(r)*ppy / (sqrt(mean(min(r, 0)^2)) *
  sqrt(ppy))``;
* ``max_drawdown = min(equity / running peak - 1)`` (a negative fraction, 0 without a loss),
  where the running peak starts at the starting cash; ``max_drawdown_duration_bars`` / ``_days``
  run from the peak before the deepest trough to the recovery of that peak (or to the last bar
  when it never recovers); the starting cash sits at the first bar's time;
* ``calmar = cagr / |max_drawdown|`` (NaN without a drawdown);
* trades: ``win_rate`` (share with pnl > 0), ``profit_factor`` (gross profit / gross loss, inf
  when nothing lost), ``expectancy`` (mean pnl), ``trades`` (count), ``avg_trade_bars``,
  ``avg_trade_duration_days``, ``best_trade`` / ``worst_trade`` (trade return = pnl / entry
  notional), ``sqn = sqrt(n) * mean(pnl) / std(pnl, ddof=1)``;
* ``exposure``: the fraction of bars that end with a position;
* ``start_value``, ``end_value``: the starting cash and the last equity.

Anything undefined (no trades, fewer than two returns, zero volatility) is NaN.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DAY_NS = 86_400 * 10**9

#: Metrics of the equity curve (NaN when the curve is too short for them).
CURVE_METRICS: tuple[str, ...] = (
    "total_return",
    "cagr",
    "annual_volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "max_drawdown_duration_bars",
    "max_drawdown_duration_days",
    "calmar",
)

METRIC_NAMES: tuple[str, ...] = (
    *CURVE_METRICS,
    "win_rate",
    "profit_factor",
    "expectancy",
    "trades",
    "exposure",
    "avg_trade_bars",
    "avg_trade_duration_days",
    "best_trade",
    "worst_trade",
    "sqn",
    "start_value",
    "end_value",
    "periods_per_year",
)

NAN = math.nan


def periods_per_year(ts: IntArray) -> float:
    """Bars per year implied by the timestamps (int64 ns, UTC); see the module docstring."""
    n = len(ts)
    if n == 0:
        return NAN
    span_days = (int(ts[-1]) - int(ts[0])) / DAY_NS
    if span_days >= 90:
        return n / (span_days / 365.25)
    days = np.asarray(ts, dtype=np.int64) // DAY_NS
    starts = np.flatnonzero(np.diff(days)) + 1
    edges = np.concatenate(([0], starts, [n]))
    per_day = float(np.median(np.diff(edges)))
    # 1970-01-01 was a Thursday, so (day + 3) % 7 is 0 on Mondays and 5, 6 at the weekend.
    weekend = bool(np.any((days[edges[:-1]] + 3) % 7 >= 5))
    return per_day * (365.0 if weekend else 252.0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _curve_pass(  # pragma: no cover - compiled
    equity: FloatArray, start: float
) -> tuple[float, float, float, float, int, int, int]:
    """(mean r, std r ddof=1, rms of min(r, 0), max drawdown, peak, trough, recovery), one pass.

    Indices are into the curve with the starting value prepended (0 = start, i + 1 = bar i);
    recovery is the first index at or above the peak after the trough (n when it never is).
    """
    n = len(equity)
    # Sums shifted by the first return keep the one-pass variance accurate.
    shift = equity[0] / start - 1.0
    s1 = 0.0
    s2 = 0.0
    down = 0.0
    prev = start
    peak_val = start
    peak_i = 0
    max_dd = 0.0
    dd_peak = 0
    dd_peak_val = start
    dd_trough = 0
    recovery = 0
    # Below the peak, ``e / peak - 1 < max_dd`` is only possible when ``e < thresh``: the
    # margin (1e-9 of the peak) is far wider than the rounding of either side, so the exact
    # test still decides, but its division runs only near a new trough, not on every bar.
    # A non-positive or NaN peak always takes the exact test.
    thresh = peak_val * (1.0 + 1e-9) if peak_val > 0.0 else np.inf
    for i in range(n):
        e = equity[i]
        r = e / prev - 1.0
        prev = e
        d = r - shift
        s1 += d
        s2 += d * d
        if r < 0.0:
            down += r * r
        if e >= peak_val:
            peak_val = e
            peak_i = i + 1
            thresh = peak_val * (1.0 + max_dd + 1e-9) if peak_val > 0.0 else np.inf
            if recovery < 0 and e >= dd_peak_val:
                recovery = i + 1
        elif e < thresh:
            dd = e / peak_val - 1.0
            if dd < max_dd:
                max_dd = dd
                dd_peak = peak_i
                dd_peak_val = peak_val
                dd_trough = i + 1
                recovery = -1
                thresh = peak_val * (1.0 + max_dd + 1e-9) if peak_val > 0.0 else np.inf
    if recovery < 0:
        recovery = n
    mean = shift + s1 / n
    std = np.nan
    if n > 1:
        std = math.sqrt(max(s2 - s1 * s1 / n, 0.0) / (n - 1))
    return mean, std, math.sqrt(down / n), max_dd, dd_peak, dd_trough, recovery


def _div(a: float, b: float) -> float:
    if b == 0.0 or math.isnan(b) or math.isnan(a):
        if math.isnan(a) or math.isnan(b) or a == 0.0:
            return NAN
        return math.inf if a > 0 else -math.inf
    return a / b


def curve_metrics(
    equity: FloatArray, start_value: float, ts: IntArray, ppy: float | None = None
) -> dict[str, float]:
    """Curve metrics (returns, drawdown, start/end values) of one equity curve.

    ``equity`` has one value per bar at timestamps ``ts``; ``start_value`` is the cash before
    the first bar. ``ppy`` defaults to :func:`periods_per_year` of ``ts``.
    """
    eq = np.ascontiguousarray(equity, dtype=np.float64)
    n = len(eq)
    if ppy is None:
        ppy = periods_per_year(ts)
    out = dict.fromkeys(CURVE_METRICS, NAN)
    out.update(start_value=float(start_value), end_value=NAN, periods_per_year=float(ppy))
    if n == 0:
        return out
    if not eq.flags.writeable:
        eq = eq.copy()
    mean, std, down, max_dd, peak, _trough, recovery = _curve_pass(eq, float(start_value))
    end = float(eq[-1])
    growth = end / start_value
    sqrt_ppy = math.sqrt(ppy)
    cagr = growth ** (ppy / n) - 1.0 if growth > 0 else (-1.0 if growth == 0 else NAN)
    duration_days = 0.0
    if max_dd < 0.0:
        t_peak = int(ts[max(peak - 1, 0)])
        t_end = int(ts[max(recovery - 1, 0)])
        duration_days = (t_end - t_peak) / DAY_NS
    out.update(
        total_return=growth - 1.0,
        cagr=cagr,
        annual_volatility=std * sqrt_ppy,
        sharpe=_div(mean, std) * sqrt_ppy if std == std else NAN,
        sortino=_div(mean * ppy, down * sqrt_ppy) if n > 1 else NAN,
        max_drawdown=max_dd,
        max_drawdown_duration_bars=float(recovery - peak if max_dd < 0.0 else 0),
        max_drawdown_duration_days=duration_days,
        calmar=cagr / abs(max_dd) if max_dd < 0.0 else NAN,
        end_value=end,
    )
    return out


def trade_metrics(
    pnl: FloatArray, returns: FloatArray, bars: npt.NDArray[np.int64], days: FloatArray
) -> dict[str, float]:
    """Trade statistics from per-trade pnl, return (pnl/entry notional), bars and days held."""
    n = len(pnl)
    if n == 0:
        return {
            "win_rate": NAN,
            "profit_factor": NAN,
            "expectancy": NAN,
            "trades": 0.0,
            "avg_trade_bars": NAN,
            "avg_trade_duration_days": NAN,
            "best_trade": NAN,
            "worst_trade": NAN,
            "sqn": NAN,
        }
    won = pnl > 0
    gains = float(pnl[won].sum())
    losses = float(-pnl[pnl < 0].sum())
    mean = float(pnl.mean())
    std = float(pnl.std(ddof=1)) if n > 1 else NAN
    return {
        "win_rate": float(np.count_nonzero(won)) / n,
        "profit_factor": _div(gains, losses),
        "expectancy": mean,
        "trades": float(n),
        "avg_trade_bars": float(bars.mean()),
        "avg_trade_duration_days": float(days.mean()),
        "best_trade": float(np.max(returns)),
        "worst_trade": float(np.min(returns)),
        "sqn": math.sqrt(n) * mean / std if n > 1 and std > 0 else NAN,
    }


def compute_metrics(
    equity: FloatArray,
    start_value: float,
    ts: IntArray,
    exposure: float,
    pnl: FloatArray,
    returns: FloatArray,
    bars: npt.NDArray[np.int64],
    days: FloatArray,
    ppy: float | None = None,
) -> dict[str, float]:
    """Every metric in :data:`METRIC_NAMES` order."""
    merged = curve_metrics(equity, start_value, ts, ppy)
    merged.update(trade_metrics(pnl, returns, bars, days))
    merged["exposure"] = float(exposure)
    return {name: merged[name] for name in METRIC_NAMES}
