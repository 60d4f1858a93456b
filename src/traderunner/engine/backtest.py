"""``run_backtest``: a strategy over one or several symbols' candles, arrays in, result out.

Fill rules, costs and stops are those of :mod:`traderunner.engine.kernel`; metrics are defined
in :mod:`traderunner.engine.metrics`.

Several symbols: each symbol runs on ``cash / len(symbols)``. The portfolio curve is the sum
of the symbol curves on the union of their timestamps, each curve forward-filled (before a
symbol's first bar it counts its starting cash). Portfolio curve metrics come from that curve
(periods per year from the union timestamps); portfolio trade metrics from all trades
together; portfolio exposure is the fraction of union bars on which any symbol holds a
position.

Candles may be given as a DataFrame, a ``CandleArrays``, a mapping symbol -> either of those,
or a list of ``CandleArrays`` (named by their ``symbol``). Unnamed data is called ``data``
(``data1``, ``data2`` ... in a list).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from traderunner.domain.candles import CandleArrays
from traderunner.engine.kernel import END, KernelRun, first_bad_bar, simulate
from traderunner.engine.metrics import (
    DAY_NS,
    compute_metrics,
    day_info,
    periods_per_year,
)
from traderunner.engine.options import BacktestOptions
from traderunner.engine.result import (
    BacktestResult,
    SymbolResult,
    fill_frame,
    trade_frame,
    utc_index,
)
from traderunner.errors import CancelledError, DataRangeError, StrategyError
from traderunner.strategies.base import Strategy, StrategyParams

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

CandleInput = (
    pd.DataFrame | CandleArrays | Mapping[str, pd.DataFrame | CandleArrays] | Sequence[CandleArrays]
)


def strategy_class(strategy: str | type[Strategy] | Strategy) -> type[Strategy]:
    """The Strategy class for a registry name, a class or an instance."""
    if isinstance(strategy, str):
        from traderunner.strategies import get_strategy

        return get_strategy(strategy)
    if isinstance(strategy, Strategy):
        return type(strategy)
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        return strategy
    raise StrategyError(
        f"expected a strategy name, Strategy subclass or instance, got {type(strategy).__name__}"
    )


def strategy_name(cls: type[Strategy]) -> str:
    return cls.name or cls.__name__


def make_strategy(
    strategy: str | type[Strategy] | Strategy,
    params: Mapping[str, Any] | StrategyParams | None = None,
) -> Strategy:
    """A ready Strategy; an instance is used as is unless ``params`` are given."""
    if isinstance(strategy, Strategy) and params is None:
        return strategy
    return strategy_class(strategy)(params)


def _to_arrays(data: Any, name: str) -> CandleArrays:
    if isinstance(data, CandleArrays):
        return data
    if isinstance(data, pd.DataFrame):
        return CandleArrays.from_frame(data, symbol=name, source="dataframe")
    raise DataRangeError(
        f"candles for {name!r} must be a DataFrame or CandleArrays, got {type(data).__name__}"
    )


def normalize_candles(candles: CandleInput) -> list[tuple[str, CandleArrays]]:
    """(symbol, candles) pairs in input order; empty or unusable input -> DataRangeError."""
    if isinstance(candles, CandleArrays | pd.DataFrame):
        name = candles.symbol if isinstance(candles, CandleArrays) else ""
        if not name and isinstance(candles, pd.DataFrame):
            name = str(candles.attrs.get("symbol", ""))
        pairs = [(name or "data", _to_arrays(candles, name or "data"))]
    elif isinstance(candles, Mapping):
        pairs = [(str(sym), _to_arrays(data, str(sym))) for sym, data in candles.items()]
    elif isinstance(candles, Sequence) and not isinstance(candles, str | bytes):
        pairs = []
        for i, data in enumerate(candles, start=1):
            arrays = _to_arrays(data, f"data{i}")
            pairs.append((arrays.symbol or f"data{i}", arrays))
    else:
        raise DataRangeError(
            "candles must be a DataFrame, CandleArrays, a mapping of symbol to those, or a "
            f"list of CandleArrays; got {type(candles).__name__}"
        )
    if not pairs:
        raise DataRangeError("no candles given: pass at least one symbol's candles")
    seen: set[str] = set()
    for sym, arrays in pairs:
        if sym in seen:
            raise DataRangeError(f"symbol {sym!r} is given twice: pass each symbol once")
        seen.add(sym)
        if len(arrays) == 0:
            raise DataRangeError(
                f"no candles for {sym!r}: the series is empty; import data or widen the period"
            )
        bad, problem = first_bad_bar(arrays.ts, arrays.open, arrays.high, arrays.low, arrays.close)
        if bad >= 0:
            when = pd.Timestamp(int(arrays.ts[bad]), tz="UTC").isoformat()
            if problem == "order":
                raise DataRangeError(
                    f"candles for {sym!r} are not in time order at bar {bad} ({when}): sort "
                    "them and drop duplicate timestamps"
                )
            raise DataRangeError(
                f"candles for {sym!r} have a missing or non-positive price at bar {bad} "
                f"({when}): drop or fill that bar before backtesting"
            )
    return pairs


def exposure(position: FloatArray) -> float:
    """The fraction of bars that end with a position."""
    # Counting a boolean mask is about twice as fast as count_nonzero on the floats.
    return float(np.count_nonzero(position != 0.0)) / len(position)


def _closed(run: KernelRun) -> tuple[IntArray, IntArray]:
    keep = run.n_trades - run.n_open
    return run.entry_bar[:keep], run.exit_bar[:keep]


def covered_bars(run: KernelRun) -> int:
    """How many bars lie between a closed trade's entry bar and exit bar, both included."""
    entry, exit_ = _closed(run)
    if len(entry) == 0:
        return 0
    # One symbol's trades follow each other; a reversal's two trades share one bar.
    return int((exit_ - entry + 1).sum() - np.count_nonzero(entry[1:] == exit_[:-1]))


def covered_mask(n: int, run: KernelRun) -> npt.NDArray[np.bool_]:
    """Per bar: inside a closed trade (entry to exit bar, both included)."""
    entry, exit_ = _closed(run)
    steps = np.zeros(n + 1, dtype=np.int64)
    np.add.at(steps, entry, 1)
    np.add.at(steps, exit_ + 1, -1)
    return np.cumsum(steps[:n]) > 0


@dataclass(frozen=True, slots=True, eq=False)
class Prepared:
    """Validated candles plus what the portfolio needs, computed once per backtest or sweep."""

    symbols: list[str]
    candles: list[CandleArrays]
    cash_each: float
    ppy: list[float]
    union_ts: IntArray
    #: per symbol, the index of its last bar at or before each union timestamp (-1 = before
    #: its first bar); None when every symbol has exactly the union timestamps.
    maps: list[IntArray] | None
    portfolio_ppy: float
    #: per symbol, then for the portfolio: the last bar of each UTC day, and backtesting.py's
    #: trading days per year (the ``bt_`` metrics).
    ends: list[IntArray]
    annual_days: list[float]
    portfolio_ends: IntArray
    portfolio_annual_days: float
    #: the portfolio's buy-and-hold curve (each symbol's share of the cash held from its
    #: first close); None for one symbol, whose closes are its benchmark.
    benchmark: FloatArray | None

    @classmethod
    def build(cls, candles: CandleInput, options: BacktestOptions) -> Prepared:
        pairs = normalize_candles(candles)
        arrays = [a for _, a in pairs]
        ts_list = [np.asarray(a.ts, dtype=np.int64) for a in arrays]
        same = all(len(t) == len(ts_list[0]) and np.array_equal(t, ts_list[0]) for t in ts_list[1:])
        if same:
            union, maps = ts_list[0], None
        else:
            union = np.unique(np.concatenate(ts_list))
            maps = [np.searchsorted(t, union, side="right") - 1 for t in ts_list]
        ppy = [periods_per_year(t) for t in ts_list]
        days = [day_info(t) for t in ts_list]
        ends = [d[0] for d in days]
        annual = [d[1] for d in days]
        union_days = days[0] if same else day_info(union)
        cash_each = options.cash / len(pairs)
        benchmark = None
        if len(arrays) > 1:
            benchmark = np.zeros(len(union))
            for i, a in enumerate(arrays):
                held = a.close * (cash_each / a.close[0])
                if maps is None:
                    benchmark += held
                else:
                    m = maps[i]
                    benchmark += np.where(m >= 0, held[np.maximum(m, 0)], cash_each)
        return cls(
            symbols=[s for s, _ in pairs],
            candles=arrays,
            cash_each=cash_each,
            ppy=ppy,
            union_ts=union,
            maps=maps,
            portfolio_ppy=ppy[0] if same else periods_per_year(union),
            ends=ends,
            annual_days=annual,
            portfolio_ends=union_days[0],
            portfolio_annual_days=union_days[1],
            benchmark=benchmark,
        )

    def run(self, i: int, target: npt.ArrayLike, options: BacktestOptions) -> KernelRun:
        c = self.candles[i]
        return simulate(c.open, c.high, c.low, c.close, target, options, cash=self.cash_each)

    def trade_days(self, i: int, run: KernelRun) -> FloatArray:
        ts = self.candles[i].ts
        return (ts[run.exit_bar] - ts[run.entry_bar]) / DAY_NS

    def symbol_metrics(self, i: int, run: KernelRun) -> dict[str, float]:
        c = self.candles[i]
        return compute_metrics(
            run.equity,
            self.cash_each,
            c.ts,
            exposure(run.position),
            run.pnl,
            run.trade_returns,
            run.exit_bar - run.entry_bar,
            self.trade_days(i, run),
            self.ppy[i],
            benchmark=c.close,
            is_open=run.reason == END,
            fees_paid=run.fees_paid,
            slippage_paid=run.slippage_paid,
            ends=self.ends[i],
            annual_days=self.annual_days[i],
            bt_exposure=covered_bars(run) / len(c),
        )

    def portfolio_curve(self, runs: Sequence[KernelRun]) -> tuple[FloatArray, float, float]:
        """(portfolio equity on the union timestamps, exposure, backtesting.py's exposure)."""
        if len(runs) == 1:
            run = runs[0]
            return run.equity, exposure(run.position), covered_bars(run) / len(run.equity)
        total = np.zeros(len(self.union_ts))
        held = np.zeros(len(self.union_ts), dtype=np.bool_)
        covered = np.zeros(len(self.union_ts), dtype=np.bool_)
        for i, run in enumerate(runs):
            inside_trade = covered_mask(len(run.equity), run)
            if self.maps is None:
                total += run.equity
                held |= run.position != 0
                covered |= inside_trade
                continue
            m = self.maps[i]
            inside = m >= 0
            idx = np.maximum(m, 0)
            total += np.where(inside, run.equity[idx], self.cash_each)
            held |= inside & (run.position[idx] != 0)
            covered |= inside & inside_trade[idx]
        n = len(held)
        return total, float(np.count_nonzero(held)) / n, float(np.count_nonzero(covered)) / n

    def portfolio_metrics(
        self, runs: Sequence[KernelRun], options: BacktestOptions
    ) -> tuple[FloatArray, dict[str, float]]:
        curve, exposure, bt_exposure = self.portfolio_curve(runs)
        order = None
        if len(runs) == 1:
            pnl, rets, bars, days = (
                runs[0].pnl,
                runs[0].trade_returns,
                runs[0].exit_bar - runs[0].entry_bar,
                self.trade_days(0, runs[0]),
            )
            is_open = runs[0].reason == END
        else:
            pnl = np.concatenate([r.pnl for r in runs])
            rets = np.concatenate([r.trade_returns for r in runs])
            bars = np.concatenate([r.exit_bar - r.entry_bar for r in runs])
            days = np.concatenate([self.trade_days(i, r) for i, r in enumerate(runs)])
            is_open = np.concatenate([r.reason == END for r in runs])
            exits = np.concatenate([self.candles[i].ts[r.exit_bar] for i, r in enumerate(runs)])
            order = np.argsort(exits, kind="stable")
        benchmark = self.benchmark if self.benchmark is not None else self.candles[0].close
        metrics = compute_metrics(
            curve,
            options.cash,
            self.union_ts,
            exposure,
            pnl,
            rets,
            bars,
            days,
            self.portfolio_ppy,
            benchmark=benchmark,
            benchmark_start=options.cash if self.benchmark is not None else None,
            is_open=is_open,
            exit_order=order,
            fees_paid=sum(r.fees_paid for r in runs),
            slippage_paid=sum(r.slippage_paid for r in runs),
            ends=self.portfolio_ends,
            annual_days=self.portfolio_annual_days,
            bt_exposure=bt_exposure,
        )
        return curve, metrics


def run_backtest(
    strategy: str | type[Strategy] | Strategy,
    candles: CandleInput,
    params: Mapping[str, Any] | StrategyParams | None = None,
    *,
    progress: Callable[[int, int, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    **options: Any,
) -> BacktestResult:
    """Backtest ``strategy`` with ``params`` on ``candles``; ``options`` are BacktestOptions.

    ``progress(done, total, symbol)`` is called after each symbol; ``should_stop()`` is
    checked before each symbol and raises CancelledError when it returns true. Bad options
    raise OptionError, bad parameters ParameterError, unusable candles DataRangeError, an
    unknown strategy name UnknownStrategyError, a failing strategy StrategyError.
    """
    opts = BacktestOptions.from_kwargs(**options)
    strat = make_strategy(strategy, params)
    prepared = Prepared.build(candles, opts)
    n = len(prepared.symbols)
    runs: list[KernelRun] = []
    results: dict[str, SymbolResult] = {}
    frames: list[pd.DataFrame] = []
    fill_frames: list[pd.DataFrame] = []
    for i, (sym, c) in enumerate(zip(prepared.symbols, prepared.candles, strict=True)):
        if should_stop is not None and should_stop():
            raise CancelledError(f"backtest cancelled before {sym!r} ({i} of {n} symbols done)")
        run = prepared.run(i, strat.target_positions(c), opts)
        runs.append(run)
        index = c.index
        trades = trade_frame(sym, c.ts, run)
        frames.append(trades)
        fills = fill_frame(sym, c.ts, run)
        fill_frames.append(fills)
        results[sym] = SymbolResult(
            symbol=sym,
            source=c.source or "unknown",
            equity=pd.Series(run.equity, index=index, name=sym, copy=False),
            position=run.position,
            trades=trades,
            metrics=prepared.symbol_metrics(i, run),
            fills=fills,
        )
        if progress is not None:
            progress(i + 1, n, sym)
    if n == 1:
        # One symbol is its own portfolio: same curve, cash, bars and trades.
        only = results[prepared.symbols[0]]
        metrics = dict(only.metrics)
        equity = pd.Series(runs[0].equity, index=only.equity.index, name="equity", copy=False)
        all_trades = frames[0]
        all_fills = fill_frames[0]
    else:
        curve, metrics = prepared.portfolio_metrics(runs, opts)
        equity = pd.Series(curve, index=utc_index(prepared.union_ts), name="equity", copy=False)
        non_empty = [f for f in frames if len(f)]
        if non_empty:
            all_trades = pd.concat(non_empty, ignore_index=True)
            all_trades = all_trades.sort_values("entry_time", kind="stable", ignore_index=True)
        else:
            all_trades = frames[0]
        all_fills = _merge(fill_frames, "time")
    return BacktestResult(
        strategy=strategy_name(type(strat)),
        params=strat.params.to_dict(),
        options=opts,
        symbols=results,
        equity=equity,
        metrics=metrics,
        trades=all_trades,
        fills=all_fills,
    )


def _merge(frames: Sequence[pd.DataFrame], by: str) -> pd.DataFrame:
    non_empty = [f for f in frames if len(f)]
    if not non_empty:
        return frames[0]
    merged = pd.concat(non_empty, ignore_index=True)
    return merged.sort_values(by, kind="stable", ignore_index=True)
