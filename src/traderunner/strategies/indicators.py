"""Vectorised indicators shared by the built-in strategies (and free for user strategies).

Every function takes float64 arrays and returns arrays of the same length, with NaN where the
window is not yet full; element ``t`` depends only on elements ``0..t`` (no look-ahead).

Sweeps evaluate many parameter combinations on the same candles. Inside
``with indicator_cache(candles):`` each indicator computed on one of those candles' columns is
memoised by (function, column, arguments), so ``sma(close, 20)`` is computed once per sweep, not
once per combination. Outside that block nothing is cached.

The numba kernels are compiled on their first call (:func:`~traderunner.strategies.jit.lazy_njit`),
so importing a strategy to check its parameters does not import numba.
"""

from __future__ import annotations

import contextvars
import functools
import math
import operator
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from traderunner.domain.candles import COLUMNS, CandleArrays
from traderunner.strategies.jit import lazy_njit

FloatArray = npt.NDArray[np.float64]
Int8Array = npt.NDArray[np.int8]
F = TypeVar("F", bound=Callable[..., Any])


#: Residual allowed to an EMA seeded on a short window, as a fraction of the price range:
#: ``history_bars`` of the EMA rules waits until ``(1 - alpha)**k`` is this small.
EMA_RESIDUAL = 1e-10
#: The same for Wilder's smoothing in RSI, as a fraction of the largest one-bar move.
RSI_RESIDUAL = 1e-12
#: How far back, in multiples of their window, the hold rules (``hold_crossings``) look in a
#: live window for the bar that last reset their state: a state no bar reset for that long
#: is not recovered from the window (docs/strategies.md, "History for live signals").
STATE_MEMORY = 50


def decay_bars(factor: float, residual: float) -> int:
    """The smallest ``k >= 0`` with ``factor ** k <= residual`` (``0 <= factor < 1``).

    The number of steps after which a recursion ``e_k = factor * e_{k-1}`` has shrunk any
    starting difference to ``residual`` times its size: how long an EMA (``factor = 1 -
    alpha``) or Wilder's smoothing (``factor = 1 - 1/period``) takes to forget its seed.
    """
    if not 0.0 <= factor < 1.0 or not 0.0 < residual < 1.0:
        raise ValueError(f"decay_bars needs 0 <= factor < 1 and 0 < residual < 1, got {factor}")
    if factor == 0.0:
        return 1
    k = max(math.ceil(math.log(residual) / math.log(factor)), 0)
    while factor**k > residual:  # the logarithms round; make the bound hold exactly
        k += 1
    return k


def ema_alpha(span: int) -> float:
    """The smoothing factor of :func:`ema`: ``2 / (span + 1)``."""
    return 2.0 / (span + 1.0)


class _Memo:
    __slots__ = ("base_ids", "keep", "results")

    def __init__(self, candles: CandleArrays) -> None:
        # Holding the columns keeps their ids unique for the life of the cache.
        self.keep = [getattr(candles, c) for c in COLUMNS]
        self.base_ids = {id(a) for a in self.keep}
        self.results: dict[tuple[Any, ...], Any] = {}


_memo: contextvars.ContextVar[_Memo | None] = contextvars.ContextVar("indicator_memo", default=None)


@contextmanager
def indicator_cache(candles: CandleArrays) -> Iterator[None]:
    """Memoise indicators computed on ``candles``' columns for the duration of the block."""
    token = _memo.set(_Memo(candles))
    try:
        yield
    finally:
        _memo.reset(token)


def memoized(func: F) -> F:
    """Cache ``func(column, *args)`` inside :func:`indicator_cache` for base columns."""

    @functools.wraps(func)
    def wrapper(values: Any, *args: Any, **kwargs: Any) -> Any:
        memo = _memo.get()
        if memo is None or id(values) not in memo.base_ids:
            return func(values, *args, **kwargs)
        key = (func.__name__, id(values), args, tuple(sorted(kwargs.items())))
        hit = memo.results.get(key)
        if hit is None:
            hit = func(values, *args, **kwargs)
            if isinstance(hit, np.ndarray):
                hit.setflags(write=False)
            memo.results[key] = hit
        return hit

    return wrapper  # type: ignore[return-value]


@lazy_njit(cache=True, nogil=True)
def _sma_kernel(x: FloatArray, window: int, out: FloatArray) -> None:  # pragma: no cover - jit
    # The same arithmetic as ``cumsum`` then ``(c[t+1] - c[t+1-window]) / window``, in one pass:
    # a ring of the last ``window`` running sums replaces the cumulative-sum array, so the
    # result is bit for bit that of the NumPy form, and a prefix of the input gives a prefix
    # of the output (no look-ahead).
    n = len(x)
    ring = np.zeros(window)  # ring[k % window] holds the sum of x[0..k-1]
    acc = 0.0
    j = 1 % window
    head = min(window - 1, n)
    for i in range(head):
        acc += x[i]
        ring[j] = acc
        out[i] = np.nan
        j += 1
        if j == window:
            j = 0
    for i in range(head, n):
        acc += x[i]
        old = ring[j]
        ring[j] = acc
        out[i] = (acc - old) / window
        j += 1
        if j == window:
            j = 0


@memoized
def sma(values: FloatArray, window: int) -> FloatArray:
    """Simple moving average over ``window`` bars (running-sum form, O(n), one pass)."""
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    w = operator.index(window)
    # NumPy allocates the output (huge pages for big arrays); the kernel only fills it.
    out = np.empty(n)
    if w <= 0 or w > n:
        out.fill(np.nan)
        return out
    _sma_kernel(np.ascontiguousarray(x), w, out)
    return out


@lazy_njit(cache=True, nogil=True)
def _compare_kernel(a: FloatArray, b: FloatArray, out: Int8Array) -> None:  # pragma: no cover
    for i in range(len(out)):
        x = a[i]
        y = b[i]
        # Branch-free so LLVM vectorises it; every comparison with NaN is false.
        out[i] = np.int8(x > y) - np.int8(x < y)


def compare(a: npt.ArrayLike, b: npt.ArrayLike) -> Int8Array:
    """+1 where ``a > b``, -1 where ``a < b``, 0 where equal or either is NaN, as int8.

    The same as ``sign(nan_to_num(a - b))`` (also for infinities), element by element.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:  # scalars and broadcasting: the NumPy form
        with np.errstate(invalid="ignore"):
            diff = x - y
        return np.sign(np.nan_to_num(diff, nan=0.0)).astype(np.int8)
    out = np.empty(len(x), dtype=np.int8)
    _compare_kernel(np.ascontiguousarray(x), np.ascontiguousarray(y), out)
    return out


@lazy_njit(cache=True, nogil=True)
def _ema_kernel(x: FloatArray, alpha: float, seed: int) -> FloatArray:  # pragma: no cover - jit
    n = len(x)
    out = np.full(n, np.nan)
    if seed > n:
        return out
    acc = 0.0
    for i in range(seed):
        acc += x[i]
    prev = acc / seed
    out[seed - 1] = prev
    for i in range(seed, n):
        prev = alpha * x[i] + (1.0 - alpha) * prev
        out[i] = prev
    return out


@memoized
def ema(values: FloatArray, span: int) -> FloatArray:
    """Exponential moving average, ``alpha = 2 / (span + 1)``, seeded with the first SMA."""
    x = np.ascontiguousarray(values, dtype=np.float64)
    if span <= 0:
        return np.full(len(x), np.nan)
    return _ema_kernel(x, ema_alpha(span), span)


@lazy_njit(cache=True, nogil=True)
def _wilder_rsi(x: FloatArray, period: int) -> FloatArray:  # pragma: no cover - jit
    n = len(x)
    out = np.full(n, np.nan)
    if n <= period:
        return out
    gain = 0.0
    loss = 0.0
    for i in range(1, period + 1):
        d = x[i] - x[i - 1]
        if d > 0:
            gain += d
        else:
            loss -= d
    gain /= period
    loss /= period
    out[period] = 100.0 if loss == 0 else 100.0 - 100.0 / (1.0 + gain / loss)
    for i in range(period + 1, n):
        d = x[i] - x[i - 1]
        g = d if d > 0 else 0.0
        lo = -d if d < 0 else 0.0
        gain = (gain * (period - 1) + g) / period
        loss = (loss * (period - 1) + lo) / period
        out[i] = 100.0 if loss == 0 else 100.0 - 100.0 / (1.0 + gain / loss)
    return out


@memoized
def rsi(values: FloatArray, period: int) -> FloatArray:
    """Wilder's RSI (0..100) over ``period`` bars; NaN for the first ``period`` bars."""
    return _wilder_rsi(np.ascontiguousarray(values, dtype=np.float64), period)


@memoized
def rolling_std(values: FloatArray, window: int) -> FloatArray:
    """Population standard deviation over ``window`` bars."""
    x = np.asarray(values, dtype=np.float64)
    out = np.full(len(x), np.nan)
    if window <= 0 or window > len(x):
        return out
    # Shifting by the first value keeps the sum-of-squares form numerically stable.
    y = x - x[0]
    c1 = np.cumsum(np.insert(y, 0, 0.0))
    c2 = np.cumsum(np.insert(y * y, 0, 0.0))
    s1 = c1[window:] - c1[:-window]
    s2 = c2[window:] - c2[:-window]
    var = np.maximum(s2 / window - (s1 / window) ** 2, 0.0)
    out[window - 1 :] = np.sqrt(var)
    return out


def _rolling_extreme(x: FloatArray, window: int, fn: Callable[..., Any]) -> FloatArray:
    out = np.full(len(x), np.nan)
    if window <= 0 or window > len(x):
        return out
    view = np.lib.stride_tricks.sliding_window_view(x, window)
    out[window - 1 :] = fn(view, axis=1)
    return out


@memoized
def rolling_max(values: FloatArray, window: int) -> FloatArray:
    """Highest value of the last ``window`` bars, including the current one."""
    return _rolling_extreme(np.asarray(values, dtype=np.float64), window, np.max)


@memoized
def rolling_min(values: FloatArray, window: int) -> FloatArray:
    """Lowest value of the last ``window`` bars, including the current one."""
    return _rolling_extreme(np.asarray(values, dtype=np.float64), window, np.min)


def shift(values: npt.NDArray[Any], periods: int = 1, fill: float = np.nan) -> FloatArray:
    """Values ``periods`` bars ago (positive periods only: never looks ahead)."""
    if periods < 0:
        raise ValueError("shift() only looks back; periods must be >= 0")
    x = np.asarray(values, dtype=np.float64)
    out = np.full(len(x), fill)
    if periods == 0:
        return x.copy()
    if periods < len(x):
        out[periods:] = x[:-periods]
    return out


BoolArray = npt.NDArray[np.bool_]


def cross_side(a: npt.ArrayLike, b: npt.ArrayLike) -> Int8Array:
    """Per bar, the side of ``b`` that ``a`` was last strictly on: +1 above, -1 below, as int8.

    A bar where they are equal, or either is NaN, keeps the previous bar's value (a touch is
    not a crossing); 0 before the first bar where they differ. So the value changes exactly on
    the bars where ``a`` crosses ``b``: the state of a crossover rule. One pass, no
    temporaries (a numba kernel).
    """
    x = np.ascontiguousarray(a, dtype=np.float64)
    y = np.ascontiguousarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"cross_side needs two 1-d arrays of one length, got {x.shape}, {y.shape}")
    out = np.empty(len(x), dtype=np.int8)
    _cross_side_kernel(x, y, out)
    return out


@lazy_njit(cache=True, nogil=True)
def _cross_side_kernel(a: FloatArray, b: FloatArray, out: Int8Array) -> None:  # pragma: no cover
    side = np.int8(0)
    for i in range(len(out)):
        if a[i] > b[i]:
            side = np.int8(1)
        elif a[i] < b[i]:
            side = np.int8(-1)
        out[i] = side


def hold_crossings(enter: BoolArray, exit_: BoolArray) -> npt.NDArray[np.int8]:
    """1 from each bar where ``enter`` is true until the next bar where ``exit_`` is true.

    Turns event-style rules ("buy when oversold, sell when back at the mean") into a target
    position. Exit wins when both are true on one bar.
    """
    return _hold(np.asarray(enter, dtype=np.bool_), np.asarray(exit_, dtype=np.bool_))


@lazy_njit(cache=True, nogil=True)
def _hold(enter: BoolArray, exit_: BoolArray) -> npt.NDArray[np.int8]:  # pragma: no cover
    n = len(enter)
    out = np.zeros(n, dtype=np.int8)
    state = 0
    for i in range(n):
        if exit_[i]:
            state = 0
        elif enter[i]:
            state = 1
        out[i] = state
    return out
