"""Plotly figures of a saved run: what backtesting.py's ``plot()`` shows, from stored tables.

* a backtest: the portfolio's equity, its drawdown, and each symbol's close with the trades
  on it (entries as triangles, up for long and down for short; exits as crosses, green for a
  win and red for a loss), all on one shared time axis;
* a sweep: the ranking metric over the first two swept parameters as a heatmap (the best value
  over the other parameters), or over the one swept parameter as a line.

Inputs are DataFrames as ``store.runs.frames`` returns them (``equity``: ``ts``, ``equity``;
``price:SYMBOL``: ``ts``, ``close``) and the trade list as a DataFrame, so the dashboard can
draw the same figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

#: At most this many symbols get a price panel (a portfolio of 50 would be unreadable).
MAX_PRICE_PANELS = 6
#: Above this many points a trace is drawn with WebGL.
_GL_POINTS = 20_000


def drawdown(equity: pd.Series) -> pd.Series:
    """Drawdown from the running peak, as a fraction (0 at a new high, -0.1 = 10% below)."""
    peak = equity.cummax()
    return equity / peak - 1.0


def _scatter(n: int) -> Any:
    import plotly.graph_objects as go

    return go.Scattergl if n > _GL_POINTS else go.Scatter


def backtest_figure(
    equity: pd.DataFrame,
    prices: Mapping[str, pd.DataFrame],
    trades: pd.DataFrame | None,
    *,
    title: str,
) -> go.Figure:
    """Equity, drawdown and price panels (see the module docstring)."""
    from plotly.subplots import make_subplots

    shown = list(prices)[:MAX_PRICE_PANELS]
    rows = 2 + len(shown)
    heights = [0.4, 0.15] + [0.45 / max(len(shown), 1)] * len(shown)
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.03,
        row_heights=heights[:rows],
        subplot_titles=["equity", "drawdown", *(f"{s} close" for s in shown)],
    )
    curve = equity.set_index("ts")["equity"]
    line = _scatter(len(curve))
    fig.add_trace(line(x=curve.index, y=curve.to_numpy(), name="equity", mode="lines"), 1, 1)
    down = drawdown(curve)
    fig.add_trace(
        line(
            x=down.index,
            y=down.to_numpy() * 100,
            name="drawdown %",
            mode="lines",
            fill="tozeroy",
            line={"color": "#c0392b"},
        ),
        2,
        1,
    )
    for i, symbol in enumerate(shown, start=3):
        frame = prices[symbol]
        fig.add_trace(
            _scatter(len(frame))(
                x=frame["ts"], y=frame["close"], name=f"{symbol} close", mode="lines"
            ),
            i,
            1,
        )
        if trades is not None and len(trades) and "symbol" in trades:
            _add_trades(fig, trades[trades["symbol"].astype(str) == symbol], i, symbol)
    fig.update_yaxes(title_text="equity", row=1, col=1)
    fig.update_yaxes(title_text="%", row=2, col=1)
    fig.update_layout(
        title=title,
        height=420 + 220 * rows,
        hovermode="x unified",
        template="plotly_white",
        legend={"orientation": "h"},
    )
    return fig


def _add_trades(fig: go.Figure, trades: pd.DataFrame, row: int, symbol: str) -> None:
    import plotly.graph_objects as go

    if not len(trades):
        return
    size = trades["size"].astype(float)
    pnl = trades["pnl"].astype(float)
    fig.add_trace(
        go.Scatter(
            x=trades["entry_time"],
            y=trades["entry_price"],
            mode="markers",
            name=f"{symbol} entries",
            marker={
                "symbol": ["triangle-up" if s >= 0 else "triangle-down" for s in size],
                "size": 9,
                "color": "#2c3e50",
            },
            text=["long" if s >= 0 else "short" for s in size],
            hovertemplate="%{text} entry %{y:.4f}<extra></extra>",
        ),
        row,
        1,
    )
    fig.add_trace(
        go.Scatter(
            x=trades["exit_time"],
            y=trades["exit_price"],
            mode="markers",
            name=f"{symbol} exits",
            marker={
                "symbol": "x",
                "size": 8,
                "color": ["#27ae60" if p >= 0 else "#c0392b" for p in pnl],
            },
            text=[f"pnl {p:,.2f}" for p in pnl],
            hovertemplate="exit %{y:.4f}, %{text}<extra></extra>",
        ),
        row,
        1,
    )


def sweep_figure(
    rows: pd.DataFrame, grid: Mapping[str, Sequence[Any]], metric: str, *, title: str
) -> go.Figure:
    """``metric`` over the swept parameters (see the module docstring)."""
    import plotly.graph_objects as go

    swept = [name for name, values in grid.items() if len(values) > 1 and name in rows]
    fig = go.Figure()
    if metric in rows and len(swept) >= 2:
        x, y = swept[0], swept[1]
        table = rows.pivot_table(index=y, columns=x, values=metric, aggfunc="max")
        fig.add_trace(
            go.Heatmap(
                x=[str(v) for v in table.columns],
                y=[str(v) for v in table.index],
                z=table.to_numpy(),
                colorscale="Viridis",
                colorbar={"title": metric},
            )
        )
        fig.update_xaxes(title_text=x)
        fig.update_yaxes(title_text=y)
    elif metric in rows and swept:
        x = swept[0]
        line = rows.groupby(x)[metric].max()
        fig.add_trace(go.Scatter(x=line.index, y=line.to_numpy(), mode="lines+markers"))
        fig.update_xaxes(title_text=x)
        fig.update_yaxes(title_text=metric)
    fig.update_layout(title=title, template="plotly_white", height=600)
    return fig
