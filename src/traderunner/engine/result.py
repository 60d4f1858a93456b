"""Backtest results: per-symbol and portfolio equity, trades and metrics, and their JSON form.

``BacktestResult.to_dict()`` is the one serialised shape of a result (the store saves it, with
the equity curve and the lists of records as compact tables; the CLI and dashboard read it). It
is JSON-safe through the project's one converter, :func:`~traderunner.domain.jsonsafe.json_safe`
(re-exported here): NaN and infinities become ``None`` and times are ISO-8601 strings in UTC
(``2024-01-02T14:30:00Z``).

Trade and fill times are the timestamps of the bars the fills happened on (a bar's timestamp
is its open time, also for fills at its close).

Shape history (``schema_version``): 1 had no version field; 2 adds ``schema_version``,
``closed_trades`` / ``open_trades`` beside ``trades`` (a position still open after the last
bar is an open trade, marked at the last close, exit reason ``end``) and ``fill_list`` (every
fill: symbol, time, side, size, price, fee, reason).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from traderunner.domain.jsonsafe import json_safe
from traderunner.domain.runs import TRADE_COLUMNS
from traderunner.engine.kernel import END, EXIT_REASONS, KernelRun
from traderunner.engine.options import BacktestOptions

#: Version of :meth:`BacktestResult.to_dict`'s shape (see the module docstring).
SCHEMA_VERSION = 2


FILL_COLUMNS = ("symbol", "time", "side", "size", "price", "fee", "reason")


@dataclass(frozen=True, slots=True, eq=False)
class SymbolResult:
    """One symbol's run: ``position`` is the units held after each bar (negative = short)."""

    symbol: str
    source: str
    equity: pd.Series
    position: np.ndarray
    trades: pd.DataFrame
    metrics: dict[str, float]
    fills: pd.DataFrame

    @property
    def n_trades(self) -> int:
        return len(self.trades)

    @property
    def n_open_trades(self) -> int:
        return count_open(self.trades)


@dataclass(frozen=True, slots=True, eq=False)
class BacktestResult:
    """A finished backtest; ``symbols`` keeps the input order, ``equity`` is the portfolio's."""

    strategy: str
    params: dict[str, Any]
    options: BacktestOptions
    symbols: dict[str, SymbolResult]
    equity: pd.Series
    metrics: dict[str, float]
    trades: pd.DataFrame
    fills: pd.DataFrame

    @property
    def n_trades(self) -> int:
        """Every round trip, the still-open position included."""
        return len(self.trades)

    @property
    def n_open_trades(self) -> int:
        """Positions still open after the last bar (at most one per symbol)."""
        return count_open(self.trades)

    @property
    def n_closed_trades(self) -> int:
        return self.n_trades - self.n_open_trades

    def period_returns(self, freq: str) -> pd.Series:
        """Returns per calendar month (``freq="M"``) or year (``"Y"``), UTC, oldest first.

        Each is the last equity in the period over the last equity before it (the starting
        cash for the first period) minus 1; the index holds the period labels (``2024-01``,
        ``2024``).
        """
        return period_returns(self.equity, self.options.cash, freq)

    @property
    def monthly_returns(self) -> pd.Series:
        return self.period_returns("M")

    @property
    def yearly_returns(self) -> pd.Series:
        return self.period_returns("Y")

    @property
    def closed_trades(self) -> pd.DataFrame:
        """The trades that were closed by a fill (exit reason other than ``end``)."""
        return self.trades[self.trades["exit_reason"] != "end"].reset_index(drop=True)

    @property
    def open_trades(self) -> pd.DataFrame:
        """The positions still open after the last bar, marked at the last close."""
        return self.trades[self.trades["exit_reason"] == "end"].reset_index(drop=True)

    def to_dict(self, curve: bool = False) -> dict[str, Any]:
        """The JSON-safe summary (see the module docstring); ``curve`` adds the equity curve."""
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "strategy": self.strategy,
            "params": {k: json_safe(v) for k, v in self.params.items()},
            "options": {k: json_safe(v) for k, v in self.options.to_dict().items()},
            "symbols": list(self.symbols),
            "sources": {s: r.source for s, r in self.symbols.items()},
            "trades": self.n_trades,
            "closed_trades": self.n_closed_trades,
            "open_trades": self.n_open_trades,
            "metrics": safe_metrics(self.metrics),
            "per_symbol": {
                s: {
                    "metrics": safe_metrics(r.metrics),
                    "trades": r.n_trades,
                    "closed_trades": r.n_trades - r.n_open_trades,
                    "open_trades": r.n_open_trades,
                }
                for s, r in self.symbols.items()
            },
            "trade_list": trade_records(self.trades),
            "fill_list": fill_records(self.fills),
            "monthly_returns": _period_records(self.monthly_returns),
            "yearly_returns": _period_records(self.yearly_returns),
        }
        if curve:
            times = iso_times(_ns(self.equity.index))
            out["equity"] = [list(p) for p in zip(times, float_list(self.equity), strict=True)]
        return out


def period_returns(equity: pd.Series, start_value: float, freq: str) -> pd.Series:
    """See :meth:`BacktestResult.period_returns`."""
    if freq not in ("M", "Y"):
        raise ValueError(f"freq must be 'M' or 'Y', got {freq!r}")
    if len(equity) == 0:
        return pd.Series([], dtype=np.float64, name="return")
    ns = _ns(pd.DatetimeIndex(equity.index))
    stamps = ns.view("datetime64[ns]")
    unit = "M" if freq == "M" else "Y"
    periods = stamps.astype(f"datetime64[{unit}]")
    last = np.append(np.flatnonzero(periods[1:] != periods[:-1]), len(periods) - 1)
    ends = equity.to_numpy(dtype=np.float64)[last]
    before = np.concatenate(([float(start_value)], ends[:-1]))
    labels = np.datetime_as_string(periods[last], unit=unit)  # type: ignore[call-overload]
    return pd.Series(ends / before - 1.0, index=pd.Index(labels, name="period"), name="return")


def _period_records(returns: pd.Series) -> list[dict[str, Any]]:
    return [
        {"period": str(p), "return": json_safe(r)}
        for p, r in zip(returns.index, returns.to_numpy().tolist(), strict=True)
    ]


def count_open(trades: pd.DataFrame) -> int:
    """How many of ``trades`` are positions still open at the end (exit reason ``end``)."""
    if len(trades) == 0:
        return 0
    return int(np.count_nonzero(trades["exit_reason"].cat.codes.to_numpy() == END))


def float_list(values: pd.Series | npt.NDArray[np.float64]) -> list[float | None]:
    """Floats as a list with NaN/inf as None, without a per-element check when all are finite."""
    arr = np.asarray(values, dtype=np.float64)
    if bool(np.isfinite(arr).all()):
        return arr.tolist()
    return [json_safe(v) for v in arr.tolist()]


def safe_metrics(metrics: Mapping[str, float]) -> dict[str, float | None]:
    return {k: json_safe(v) for k, v in metrics.items()}


def _ns(index: pd.Index) -> npt.NDArray[np.int64]:
    if not isinstance(index, pd.DatetimeIndex):
        raise TypeError("expected a DatetimeIndex")
    return np.asarray(index.as_unit("ns").asi8, dtype=np.int64)


def iso_times(ns: npt.NDArray[np.int64]) -> list[str]:
    """ISO-8601 UTC strings, whole seconds unless the times need finer units."""
    arr = np.asarray(ns, dtype=np.int64)
    if len(arr) == 0:
        return []
    stamps: npt.NDArray[np.datetime64] = arr.view("datetime64[ns]")
    if np.any(arr % 1_000_000_000):
        text = np.datetime_as_string(stamps, unit="ns", timezone="UTC")
    else:
        text = np.datetime_as_string(stamps, unit="s", timezone="UTC")
    return text.tolist()


def utc_index(ns: npt.NDArray[np.int64]) -> pd.DatetimeIndex:
    """A UTC DatetimeIndex over int64 nanoseconds, without a per-element conversion."""
    arr = np.asarray(ns, dtype=np.int64).view("datetime64[ns]")
    return pd.DatetimeIndex(arr, dtype="datetime64[ns, UTC]", copy=False)


def trade_frame(symbol: str, ts: npt.NDArray[np.int64], run: KernelRun) -> pd.DataFrame:
    """The trades of one kernel run as a DataFrame with :data:`TRADE_COLUMNS`, column-wise.

    ``symbol`` and ``exit_reason`` are categoricals (they compare equal to plain strings).
    """
    # Categoricals from codes: no per-trade Python strings are built.
    return pd.DataFrame(
        {
            "symbol": pd.Categorical.from_codes(
                np.zeros(run.n_trades, dtype=np.int8), categories=pd.Index([symbol])
            ),
            # Arrays, not indexes: a DataFrame copies the Index objects it is given.
            "entry_time": utc_index(ts[run.entry_bar]).array,
            "exit_time": utc_index(ts[run.exit_bar]).array,
            "entry_price": run.entry_price,
            "exit_price": run.exit_price,
            "size": run.units,
            "pnl": run.pnl,
            "fees": run.fees,
            "return": run.trade_returns,
            "bars": run.exit_bar - run.entry_bar,
            "exit_reason": pd.Categorical.from_codes(run.reason, categories=pd.Index(EXIT_REASONS)),
        },
        columns=list(TRADE_COLUMNS),
    )


def trade_records(trades: pd.DataFrame) -> list[dict[str, Any]]:
    """Trades as JSON-safe dicts (ISO times), built column-wise."""
    if len(trades) == 0:
        return []
    cols: dict[str, list[Any]] = {}
    for name in TRADE_COLUMNS:
        col = trades[name]
        if name in ("entry_time", "exit_time"):
            cols[name] = iso_times(_ns(pd.DatetimeIndex(col)))
        elif name in ("symbol", "exit_reason"):
            cols[name] = [str(v) for v in col.tolist()]
        elif name == "bars":
            cols[name] = col.to_numpy(dtype=np.int64).tolist()
        else:
            cols[name] = float_list(col.to_numpy(dtype=np.float64))
    return [dict(zip(TRADE_COLUMNS, row, strict=True)) for row in zip(*cols.values(), strict=True)]


def fill_frame(symbol: str, ts: npt.NDArray[np.int64], run: KernelRun) -> pd.DataFrame:
    """The fills of one kernel run as a DataFrame with :data:`FILL_COLUMNS`, column-wise."""
    n = len(run.fill_bar)
    return pd.DataFrame(
        {
            "symbol": pd.Categorical.from_codes(
                np.zeros(n, dtype=np.int8), categories=pd.Index([symbol])
            ),
            "time": utc_index(ts[run.fill_bar]).array,
            "side": pd.Categorical.from_codes(
                (run.fill_side < 0).astype(np.int8), categories=pd.Index(["buy", "sell"])
            ),
            "size": run.fill_units,
            "price": run.fill_price,
            "fee": run.fill_fee,
            "reason": pd.Categorical.from_codes(run.fill_reason, categories=pd.Index(EXIT_REASONS)),
        },
        columns=list(FILL_COLUMNS),
    )


def fill_records(fills: pd.DataFrame) -> list[dict[str, Any]]:
    """Fills as JSON-safe dicts (ISO times), built column-wise."""
    if len(fills) == 0:
        return []
    cols: list[list[Any]] = []
    for name in FILL_COLUMNS:
        col = fills[name]
        if name == "time":
            cols.append(iso_times(_ns(pd.DatetimeIndex(col))))
        elif name in ("symbol", "side", "reason"):
            cols.append([str(v) for v in col.tolist()])
        else:
            cols.append(float_list(col.to_numpy(dtype=np.float64)))
    return [dict(zip(FILL_COLUMNS, row, strict=True)) for row in zip(*cols, strict=True)]
