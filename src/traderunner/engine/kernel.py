"""The numba fill loop: target positions in, equity, positions, trades and fills out.

The loop calls :func:`traderunner.engine.step.step` once per bar (the paper broker calls the
same function through :class:`~traderunner.engine.step.Stepper`), so every rule below lives in
that one step.

Semantics (the docs quote this block; tests in ``tests/unit/engine`` pin every rule):

* **Targets.** The strategy gives a target position per bar (-1, 0, 1, warm-up zeroed). The
  direction filter keeps only +1 for ``long`` (-1 becomes 0), only -1 for ``short`` and all
  of it for ``both``.
* **Acting on changes.** The engine keeps ``acted``, the last target it acted on (starting at
  0). When ``target[t] != acted`` it trades to the new target and sets ``acted = target[t]``.
  After a stop exit the position is flat but ``acted`` is unchanged, so it does not re-enter
  until the target changes again.
* **Fill timing.** ``next_open``: a change seen on the close of bar t fills at ``open[t+1]``
  (no fill when t is the last bar). ``close``: it fills at ``close[t]``. A reversal (long to
  short) is two fills at the same price: close the old position, then open the new one.
* **Sizing.** At entry the equity is ``E = cash + position value`` (flat by then) and
  ``units = (E*size - fee_per_order) / (fill_price * (1 + fees_bps/1e4))`` (``fill_price``
  after slippage), so fees never make cash negative at size 1. With ``units=whole`` that is
  rounded down to a multiple of ``lot_size`` (``floor(units / lot) * lot``, the peers' rule).
  A short sells the same number of units. When that is not positive (equity used up by fees
  or losses, or less than one lot) the entry is skipped.
* **Costs.** Every fill moves against the trader: buys at ``price*(1+slippage)``, sells at
  ``price*(1-slippage)``. Each fill pays ``|units|*fill_price*fees_bps/1e4 + fee_per_order``.
* **Stops** (each optional, a fraction of the entry fill price) are checked on every bar the
  position is open *after* the entry fill: for ``next_open`` on the entry bar itself (its
  high/low after the open), for ``close`` fills from the next bar on. For a long: stop-loss
  level ``entry*(1-sl)``, take-profit level ``entry*(1+tp)``, trailing level ``peak*(1-ts)``
  where ``peak = max(entry, highs of the previous bars held, this bar's open)``; this bar's high
  joins the peak only after the check, because we cannot know whether the high came before the
  low. When stop-loss and trailing stop are both active the higher level (nearer the open) is
  the stop and names the exit reason (a tie is ``stop_loss``). A bar that opens through a level
  (open <= stop, or open >= take-profit) fills at its open (a gap); otherwise low <= stop fills
  at the stop level, elif high >= take-profit fills at the take-profit level. A bar touching both
  is assumed to hit the stop first (conservative). Shorts mirror all of it (trough, lows,
  levels above/below). Stop fills pay slippage and fees like any other fill. For ``close`` fills
  a bar's stops are checked before that bar's close signal is acted on.
* **End.** A position still open after the last bar is marked at the last close (no fee, no
  slippage) and recorded as a trade with exit reason ``end`` (an *open* trade; the others are
  *closed*); it is not a fill.
* **Fill log.** Every fill is logged: bar, side, units, price after slippage, fee and reason
  (``signal`` for entries and signal exits, else the stop that fired).
* **Equity** at each bar is ``cash + units * close[t]``; ``position[t]`` is the units held after
  bar t (negative for a short).

Trade records hold bar *indices*: ``entry_bar``/``exit_bar`` are the bars on which the fills
happened, and ``bars = exit_bar - entry_bar``.

The kernel is compiled once (``cache=True`` keeps the machine code in numba's file cache, so a
fresh process loads it instead of compiling) and runs without the GIL, so sweeps use threads.
:func:`simulate` normalises every argument to one fixed set of types so numba never compiles a
second specialisation.
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypeVar

import numba
import numpy as np
import numpy.typing as npt

from traderunner.engine.options import BacktestOptions
from traderunner.engine.step import (
    END,
    EXIT_REASONS,
    FILL_WIDTH,
    O_DIRECTION,
    SIGNAL,
    STOP_LOSS,
    TAKE_PROFIT,
    TRADE_WIDTH,
    TRAILING_STOP,
    filtered_target,
    new_state,
    option_array,
    step,
)
from traderunner.errors import StrategyError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]

__all__ = [
    "END",
    "EXIT_REASONS",
    "SIGNAL",
    "STOP_LOSS",
    "TAKE_PROFIT",
    "TRAILING_STOP",
    "KernelRun",
    "first_bad_bar",
    "simulate",
]


class KernelRun(NamedTuple):
    """Raw kernel output for one symbol; trade and fill arrays are trimmed to their counts.

    The last trade is the position still open at the end when its ``reason`` is ``END``.
    """

    equity: FloatArray
    position: FloatArray
    entry_bar: IntArray
    exit_bar: IntArray
    entry_price: FloatArray
    exit_price: FloatArray
    units: FloatArray
    pnl: FloatArray
    fees: FloatArray
    reason: Int8Array
    fill_bar: IntArray
    fill_side: Int8Array
    fill_units: FloatArray
    fill_price: FloatArray
    fill_fee: FloatArray
    fill_reason: Int8Array
    fees_paid: float
    slippage_paid: float

    @property
    def n_trades(self) -> int:
        return len(self.pnl)

    @property
    def n_open(self) -> int:
        """1 when a position was still open after the last bar, else 0."""
        return int(len(self.reason) > 0 and self.reason[-1] == END)

    @property
    def trade_returns(self) -> FloatArray:
        """PnL over entry notional (``|units| * entry_price``) per trade."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.pnl / (np.abs(self.units) * self.entry_price)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _trade_capacity(target: Int8Array, direction: int) -> int:  # pragma: no cover - compiled
    # Every entry needs a change to a non-zero target, which bounds the number of trades.
    cap = 1
    prev = 0
    for t in range(len(target)):
        s = filtered_target(target[t], direction)
        if s != prev and s != 0:
            cap += 1
        prev = s
    return cap


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _kernel(  # pragma: no cover - compiled
    open_: FloatArray,
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    target: Int8Array,
    equity: FloatArray,
    position: FloatArray,
    state: npt.NDArray[np.void],
    opts: tuple[float, ...],
    trades: FloatArray,
    fills: FloatArray,
) -> tuple[int, int]:
    """The loop: :func:`step` on every bar, its outbox appended to the logs; (trades, fills)."""
    n = len(close)
    st = state[0]
    k = 0
    f = 0
    for t in range(n):
        equity[t] = step(st, opts, t, open_[t], high[t], low[t], close[t], target[t])
        position[t] = st.units
        if st.n_fills > 0:
            # Element by element: row views of the record would be reference-counted.
            for j in range(st.n_fills):
                for m in range(FILL_WIDTH):
                    fills[f, m] = st.fills[j, m]
                f += 1
            for j in range(st.n_trades):
                for m in range(TRADE_WIDTH):
                    trades[k, m] = st.trades[j, m]
                k += 1
    units = st.units
    if units != 0.0:
        # Still open: marked at the last close, no fee, no slippage (not a fill).
        trades[k, 0] = st.entry_bar
        trades[k, 1] = n - 1
        trades[k, 2] = st.entry_price
        trades[k, 3] = close[n - 1]
        trades[k, 4] = units
        trades[k, 5] = units * (close[n - 1] - st.entry_price) - st.entry_fee
        trades[k, 6] = st.entry_fee
        trades[k, 7] = END
        k += 1
    return k, f


@numba.njit(cache=True, nogil=True)
def _all_good(  # pragma: no cover - compiled
    ts: IntArray, open_: FloatArray, high: FloatArray, low: FloatArray, close: FloatArray
) -> bool:
    # Branch-free so LLVM vectorises it; _first_bad_bar finds the bar only when this fails.
    ok = True
    for t in range(len(close)):
        ok &= (open_[t] > 0.0) & (open_[t] < np.inf) & (high[t] > 0.0) & (high[t] < np.inf)
        ok &= (low[t] > 0.0) & (low[t] < np.inf) & (close[t] > 0.0) & (close[t] < np.inf)
    for t in range(1, len(ts)):
        ok &= ts[t] > ts[t - 1]
    return ok


@numba.njit(cache=True, nogil=True)
def _first_bad_bar(  # pragma: no cover - compiled
    ts: IntArray, open_: FloatArray, high: FloatArray, low: FloatArray, close: FloatArray
) -> tuple[int, int]:
    for t in range(len(close)):
        if t > 0 and ts[t] <= ts[t - 1]:
            return t, 2
        o, h, lo, c = open_[t], high[t], low[t], close[t]
        # "not (x > 0)" is also true for NaN.
        if not (o > 0.0 and h > 0.0 and lo > 0.0 and c > 0.0):
            return t, 1
        if o == np.inf or h == np.inf or lo == np.inf or c == np.inf:
            return t, 1
    return -1, 0


_A = TypeVar("_A", bound=np.ndarray[Any, Any])


def _readonly(arr: _A) -> _A:
    # Inputs always reach numba as read-only, C-contiguous views: one compiled version, and no
    # copy of an array that is already float64 and contiguous but read-only (pandas hands out
    # read-only views of its columns).
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)  # type: ignore[assignment]
    if arr.flags.writeable:
        arr = arr.view()
        arr.flags.writeable = False
    return arr


def _f64(values: npt.ArrayLike) -> FloatArray:
    return _readonly(np.asarray(values, dtype=np.float64))


def first_bad_bar(
    ts: IntArray, open_: FloatArray, high: FloatArray, low: FloatArray, close: FloatArray
) -> tuple[int, str]:
    """The first unusable bar as ``(index, problem)``, or ``(-1, "")`` when every bar is fine.

    ``problem`` is ``"price"`` (a missing, infinite or non-positive open/high/low/close) or
    ``"order"`` (a timestamp not after the previous one).
    """
    ts64 = _readonly(np.asarray(ts, dtype=np.int64))
    cols = (_f64(open_), _f64(high), _f64(low), _f64(close))
    if _all_good(ts64, *cols):
        return -1, ""
    i, kind = _first_bad_bar(ts64, *cols)
    return int(i), ("", "price", "order")[int(kind)]


def simulate(
    open_: FloatArray,
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    target: npt.ArrayLike,
    options: BacktestOptions,
    cash: float | None = None,
) -> KernelRun:
    """Run the fill loop for one symbol; ``cash`` overrides ``options.cash`` (portfolio split).

    ``target`` is the strategy's target position per bar; the direction filter is applied
    here. Prices must be finite and positive (see :func:`first_bad_bar`).
    """
    tgt = _readonly(np.asarray(target, dtype=np.int8))
    n = len(tgt)
    if not len(open_) == len(high) == len(low) == len(close) == n:
        raise StrategyError(f"got {n} target positions for {len(close)} bars: give one per bar")
    # Outputs are allocated by NumPy, which asks the OS for huge pages on big arrays; filling
    # arrays allocated inside numba would page-fault every 4 KiB and take twice as long.
    equity = np.empty(n)
    position = np.empty(n)
    opts = option_array(options)
    # Each trade has at most two fills.
    cap = int(_trade_capacity(tgt, int(opts[O_DIRECTION])))
    trades = np.empty((cap, TRADE_WIDTH))
    fills = np.empty((2 * cap, FILL_WIDTH))
    state = new_state(options.cash if cash is None else cash)
    k, f = _kernel(
        _f64(open_),
        _f64(high),
        _f64(low),
        _f64(close),
        tgt,
        equity,
        position,
        state,
        opts,
        trades,
        fills,
    )
    trades, fills = trades[:k], fills[:f]
    rec = state[0]
    return KernelRun(
        equity=equity,
        position=position,
        entry_bar=trades[:, 0].astype(np.int64),
        exit_bar=trades[:, 1].astype(np.int64),
        entry_price=np.ascontiguousarray(trades[:, 2]),
        exit_price=np.ascontiguousarray(trades[:, 3]),
        units=np.ascontiguousarray(trades[:, 4]),
        pnl=np.ascontiguousarray(trades[:, 5]),
        fees=np.ascontiguousarray(trades[:, 6]),
        reason=trades[:, 7].astype(np.int8),
        fill_bar=fills[:, 0].astype(np.int64),
        fill_side=fills[:, 1].astype(np.int8),
        fill_units=np.ascontiguousarray(fills[:, 2]),
        fill_price=np.ascontiguousarray(fills[:, 3]),
        fill_fee=np.ascontiguousarray(fills[:, 4]),
        fill_reason=fills[:, 5].astype(np.int8),
        fees_paid=float(rec["fees_paid"]),
        slippage_paid=float(rec["slippage_paid"]),
    )
