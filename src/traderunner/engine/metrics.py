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
* ``start_value``, ``end_value``: the starting cash and the last equity; ``equity_peak`` the
  highest equity at a bar's close;
* ``avg_drawdown``: the mean depth of the drawdown periods (each maximal run of bars below
  the running peak counts once, with its deepest point; negative, 0 without a drawdown);
* ``buy_hold_return``: holding the symbol from the first bar's close to the last (the same
  cash in each symbol of a portfolio, as the backtest splits it); ``beta = cov(r, b) /
  var(b)`` with ``b`` the per-bar returns of that buy-and-hold curve (empyrical's ``beta``),
  and ``alpha = total_return - beta * buy_hold_return`` (Jensen's alpha over the whole
  period, risk-free rate 0);
* ``fees_paid``, ``slippage_paid``: cash paid in fees, and lost to slippage against the
  unslipped price, over all fills;
* ``closed_trades``, ``open_trades``: trades closed by a fill, and positions still open at
  the end (``trades`` counts both, and the trade statistics above use both);
  ``max_consecutive_wins`` / ``_losses``: the longest runs of trades with pnl > 0 / < 0, in
  the order they were closed;
* backtesting.py's definitions, where they differ from ours (``bt_`` prefix): from the
  returns ``d`` of the last equity of each UTC calendar day, with ``A`` = 365 trading days a
  year if more than 0.6 x 2/7 of the bars fall on a weekend, else 252, and ``g`` their
  geometric mean: ``bt_return_ann = (1+g)^A - 1``, ``bt_volatility_ann = sqrt((var(d, ddof=1)
  + (1+g)^2)^A - (1+g)^(2A))``, ``bt_sharpe = bt_return_ann / bt_volatility_ann``,
  ``bt_sortino = bt_return_ann / (sqrt(mean(min(d, 0)^2)) * sqrt(A))``; ``bt_exposure``: the
  fraction of bars from each closed trade's entry bar to its exit bar, both included;
  ``bt_win_rate``: the share of closed trades with pnl > 0.

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

#: backtesting.py's definitions of figures ours define differently (see the docstring).
PEER_METRICS: tuple[str, ...] = (
    "bt_return_ann",
    "bt_volatility_ann",
    "bt_sharpe",
    "bt_sortino",
    "bt_exposure",
    "bt_win_rate",
)

METRIC_NAMES: tuple[str, ...] = (
    *CURVE_METRICS,
    "avg_drawdown",
    "buy_hold_return",
    "alpha",
    "beta",
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
    "closed_trades",
    "open_trades",
    "max_consecutive_wins",
    "max_consecutive_losses",
    "fees_paid",
    "slippage_paid",
    "start_value",
    "end_value",
    "equity_peak",
    "periods_per_year",
    *PEER_METRICS,
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
    equity: FloatArray, start: float, bench: FloatArray, bench_start: float
) -> tuple[float, float, float, float, int, int, int, float, float, float]:
    """One pass over the curve: (mean r, std r ddof=1, rms of min(r, 0), max drawdown, peak,
    trough, recovery, mean drawdown-period depth, equity peak, beta against ``bench``).

    Indices are into the curve with the starting value prepended (0 = start, i + 1 = bar i);
    recovery is the first index at or above the peak after the trough (n when it never is).
    ``bench`` is the buy-and-hold curve (any scale: only its returns are used), worth
    ``bench_start`` before the first bar.
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
    # Drawdown periods: the lowest equity of the current one, their depths' sum and count.
    period_low = np.inf
    depth_sum = 0.0
    periods = 0
    top = -np.inf
    # Benchmark returns b and the cross sums for beta (b's first return is ~0, no shift).
    bprev = bench_start
    b1 = 0.0
    b2 = 0.0
    rb = 0.0
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
        bv = bench[i]
        b = bv / bprev - 1.0
        bprev = bv
        b1 += b
        b2 += b * b
        rb += d * b
        if e > top:
            top = e
        if r < 0.0:
            down += r * r
        if e >= peak_val:
            if period_low < np.inf:
                depth_sum += period_low / peak_val - 1.0
                periods += 1
                period_low = np.inf
            peak_val = e
            peak_i = i + 1
            thresh = peak_val * (1.0 + max_dd + 1e-9) if peak_val > 0.0 else np.inf
            if recovery < 0 and e >= dd_peak_val:
                recovery = i + 1
        else:
            if e < period_low:
                period_low = e
            if e < thresh:
                dd = e / peak_val - 1.0
                if dd < max_dd:
                    max_dd = dd
                    dd_peak = peak_i
                    dd_peak_val = peak_val
                    dd_trough = i + 1
                    recovery = -1
                    thresh = peak_val * (1.0 + max_dd + 1e-9) if peak_val > 0.0 else np.inf
    if period_low < np.inf:
        depth_sum += period_low / peak_val - 1.0
        periods += 1
    if recovery < 0:
        recovery = n
    mean = shift + s1 / n
    std = np.nan
    beta = np.nan
    if n > 1:
        std = math.sqrt(max(s2 - s1 * s1 / n, 0.0) / (n - 1))
        var_b = b2 - b1 * b1 / n
        if var_b > 0.0:
            beta = (rb - s1 * b1 / n) / var_b
    avg_dd = depth_sum / periods if periods > 0 else 0.0
    return mean, std, math.sqrt(down / n), max_dd, dd_peak, dd_trough, recovery, avg_dd, top, beta


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _day_returns(  # pragma: no cover - compiled
    equity: FloatArray, day_ends: IntArray
) -> tuple[float, float, float, int]:
    """(geometric mean, variance ddof=1, mean of min(d, 0)^2, count) of the day returns ``d``
    between the equities at ``day_ends`` (the last bar of each day)."""
    m = len(day_ends) - 1
    if m < 1:
        return np.nan, np.nan, np.nan, 0
    logs = 0.0
    s1 = 0.0
    s2 = 0.0
    neg = 0.0
    ok = True
    prev = equity[day_ends[0]]
    for j in range(1, m + 1):
        e = equity[day_ends[j]]
        d = e / prev - 1.0
        prev = e
        if 1.0 + d > 0.0:
            logs += math.log1p(d)
        else:
            ok = False
        s1 += d
        s2 += d * d
        if d < 0.0:
            neg += d * d
    gmean = math.expm1(logs / m) if ok else 0.0
    var = max(s2 - s1 * s1 / m, 0.0) / (m - 1) if m > 1 else np.nan
    return gmean, var, neg / m, m


@numba.njit(cache=True, nogil=True)
def _day_scan(ts: IntArray) -> tuple[IntArray, int]:  # pragma: no cover - compiled
    """(index of the last bar of each UTC day, bars on a Saturday or Sunday), one pass."""
    n = len(ts)
    # Two passes (count, then fill) so the result is allocated at its size, not the bars'.
    # Each divides only when a bar passes the end of the current day.
    days = 0
    weekend = 0
    next_day = -(2**62)
    in_weekend = False
    for t in range(n):
        if ts[t] >= next_day:
            days += 1
            d = ts[t] // DAY_NS
            next_day = (d + 1) * DAY_NS
            # 1970-01-01 was a Thursday, so (day + 3) % 7 is 5 or 6 at the weekend.
            in_weekend = (d + 3) % 7 >= 5
        if in_weekend:
            weekend += 1
    ends = np.empty(days, dtype=np.int64)
    j = 0
    next_day = -(2**62)
    for t in range(n):
        if ts[t] >= next_day:
            if t > 0:
                ends[j] = t - 1
                j += 1
            next_day = (ts[t] // DAY_NS + 1) * DAY_NS
    if n > 0:
        ends[j] = n - 1
    return ends, weekend


def day_ends(ts: IntArray) -> IntArray:
    """Indices of the last bar of each UTC calendar day in ``ts`` (int64 ns, increasing)."""
    return _day_scan(np.asarray(ts, dtype=np.int64))[0]


def trading_days(ts: IntArray) -> float:
    """backtesting.py's days per year: 365 when over 0.6 x 2/7 of the bars are on a weekend."""
    return day_info(ts)[1]


def day_info(ts: IntArray) -> tuple[IntArray, float]:
    """:func:`day_ends` and :func:`trading_days` of ``ts`` in one pass."""
    arr = np.asarray(ts, dtype=np.int64)
    if len(arr) == 0:
        return np.zeros(0, dtype=np.int64), NAN
    ends, weekend = _day_scan(arr)
    return ends, 365.0 if weekend / len(arr) > 2 / 7 * 0.6 else 252.0


def peer_curve_metrics(equity: FloatArray, ends: IntArray, annual_days: float) -> dict[str, float]:
    """backtesting.py's annualised return, volatility, Sharpe and Sortino (see the docstring)."""
    eq = np.ascontiguousarray(equity, dtype=np.float64)
    gmean, var, neg, m = _day_returns(eq, np.ascontiguousarray(ends, dtype=np.int64))
    out = dict.fromkeys(("bt_return_ann", "bt_volatility_ann", "bt_sharpe", "bt_sortino"), NAN)
    if m < 1:
        return out
    a = annual_days
    ann = (1.0 + gmean) ** a - 1.0
    vol = math.sqrt(max((var + (1.0 + gmean) ** 2) ** a - (1.0 + gmean) ** (2 * a), 0.0))
    out["bt_return_ann"] = ann
    out["bt_volatility_ann"] = vol
    out["bt_sharpe"] = ann / vol if vol > 0 else NAN
    out["bt_sortino"] = _div(ann, math.sqrt(neg) * math.sqrt(a)) if m > 0 else NAN
    return out


def _div(a: float, b: float) -> float:
    if b == 0.0 or math.isnan(b) or math.isnan(a):
        if math.isnan(a) or math.isnan(b) or a == 0.0:
            return NAN
        return math.inf if a > 0 else -math.inf
    return a / b


def curve_metrics(
    equity: FloatArray,
    start_value: float,
    ts: IntArray,
    ppy: float | None = None,
    benchmark: FloatArray | None = None,
    benchmark_start: float | None = None,
) -> dict[str, float]:
    """Curve metrics (returns, drawdown, start/end values, against buy-and-hold) of a curve.

    ``equity`` has one value per bar at timestamps ``ts``; ``start_value`` is the cash before
    the first bar. ``ppy`` defaults to :func:`periods_per_year` of ``ts``. ``benchmark`` is the
    buy-and-hold curve (one value per bar, any scale, e.g. the closes) worth
    ``benchmark_start`` before the first bar (default: its first value); without it the
    buy-and-hold figures are NaN.
    """
    eq = np.ascontiguousarray(equity, dtype=np.float64)
    n = len(eq)
    if ppy is None:
        ppy = periods_per_year(ts)
    out = dict.fromkeys(
        (*CURVE_METRICS, "avg_drawdown", "buy_hold_return", "alpha", "beta", "equity_peak"), NAN
    )
    out.update(start_value=float(start_value), end_value=NAN, periods_per_year=float(ppy))
    if n == 0:
        return out
    has_bench = benchmark is not None
    bench = eq if benchmark is None else np.ascontiguousarray(benchmark, dtype=np.float64)
    b0 = float(bench[0] if benchmark_start is None else benchmark_start)
    mean, std, down, max_dd, peak, _trough, recovery, avg_dd, top, beta = _curve_pass(
        eq, float(start_value), bench, b0
    )
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
        avg_drawdown=avg_dd,
        equity_peak=top,
    )
    if has_bench:
        bh = float(bench[-1]) / b0 - 1.0
        out.update(buy_hold_return=bh, beta=beta, alpha=growth - 1.0 - beta * bh)
    return out


def _longest_run(mask: npt.NDArray[np.bool_]) -> int:
    if not mask.any():
        return 0
    # Run lengths from the positions where the mask flips.
    edges = np.flatnonzero(np.diff(np.concatenate(([False], mask, [False])).astype(np.int8)))
    return int((edges[1::2] - edges[::2]).max())


def trade_metrics(
    pnl: FloatArray,
    returns: FloatArray,
    bars: npt.NDArray[np.int64],
    days: FloatArray,
    is_open: npt.NDArray[np.bool_] | None = None,
    exit_order: npt.NDArray[np.int64] | None = None,
) -> dict[str, float]:
    """Trade statistics from per-trade pnl, return (pnl/entry notional), bars and days held.

    ``is_open`` marks the positions still open at the end (default: none); ``exit_order``
    sorts the trades into the order they were closed (default: as given) for the streaks.
    """
    n = len(pnl)
    open_trades = 0 if is_open is None else int(np.count_nonzero(is_open))
    counts = {
        "closed_trades": float(n - open_trades),
        "open_trades": float(open_trades),
        "max_consecutive_wins": 0.0,
        "max_consecutive_losses": 0.0,
    }
    if n == 0:
        return counts | {
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
    ordered = pnl if exit_order is None else pnl[exit_order]
    counts["max_consecutive_wins"] = float(_longest_run(ordered > 0))
    counts["max_consecutive_losses"] = float(_longest_run(ordered < 0))
    return counts | {
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
    *,
    benchmark: FloatArray | None = None,
    benchmark_start: float | None = None,
    is_open: npt.NDArray[np.bool_] | None = None,
    exit_order: npt.NDArray[np.int64] | None = None,
    fees_paid: float = 0.0,
    slippage_paid: float = 0.0,
    ends: IntArray | None = None,
    annual_days: float | None = None,
    bt_exposure: float = NAN,
) -> dict[str, float]:
    """Every metric in :data:`METRIC_NAMES` order.

    ``ends`` (:func:`day_ends` of ``ts``) and ``annual_days`` (:func:`trading_days`) are
    computed from ``ts`` when not given; sweeps pass them once for every combination.
    ``bt_exposure`` comes from the trades (the caller knows their bars).
    """
    merged = curve_metrics(equity, start_value, ts, ppy, benchmark, benchmark_start)
    merged.update(trade_metrics(pnl, returns, bars, days, is_open, exit_order))
    if ends is None or annual_days is None:
        ends, annual_days = day_info(ts)
    merged.update(peer_curve_metrics(equity, ends, annual_days))
    closed = pnl if is_open is None else pnl[~is_open]
    merged["bt_win_rate"] = (
        float(np.count_nonzero(closed > 0)) / len(closed) if len(closed) else NAN
    )
    merged["bt_exposure"] = float(bt_exposure)
    merged["exposure"] = float(exposure)
    merged["fees_paid"] = float(fees_paid)
    merged["slippage_paid"] = float(slippage_paid)
    return {name: merged[name] for name in METRIC_NAMES}
