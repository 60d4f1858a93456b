"""Fresh-process runs: cold start time and peak memory of one backtest.

The child builds its data with NumPy only (``_common.make_ohlcv``), then times, around its
imports and one backtest, everything a user's first backtest pays: importing the contestant
(and pandas, which both import), loading or compiling numba code, and the run. It records the
RSS after imports and data (before the run) and the peak RSS (``ru_maxrss``) at the end, and
prints one JSON line, with how the contestant's numba functions got their machine code:
loaded from the cache, compiled on a cache miss, or compiled because never cached
(``_common.numba_cache_stats``).
"""

from __future__ import annotations

from typing import Any

from _common import run_child

CHILD = """
import json, time
from _common import make_ohlcv, peak_rss_mb, rss_mb
data = make_ohlcv({n})
t0 = time.perf_counter()
{setup}
t1 = time.perf_counter()
rss_setup, peak_setup = rss_mb(), peak_rss_mb()
{run}
t2 = time.perf_counter()
from _common import numba_cache_stats
print(json.dumps({{**numba_cache_stats({package!r}),
    "import_s": t1 - t0, "run_s": t2 - t1, "import_run_s": t2 - t0,
    "rss_setup_mb": rss_setup, "peak_setup_mb": peak_setup, "peak_mb": peak_rss_mb(),
    "total_return": float(total_return), "trades": int(trades)}}))
"""
OURS_SETUP = """
from traderunner.engine import run_backtest
from _common import to_frame
candles = to_frame(data)
"""
OURS_RUN = """
res = run_backtest("sma_cross", candles, {{"fast": {fast}, "slow": {slow}}}, fill="close",
                   direction="long", size=1.0, cash={cash})
total_return, trades = res.metrics["total_return"], res.n_trades
"""
VBT_SETUP = """
import vectorbt
import _peers
from _common import to_frame
close = to_frame(data)["close"]
close.index = close.index.tz_localize(None)
"""
VBT_RUN = "total_return, trades = _peers.vbt_backtest(close, {fast}, {slow}, {cash})"


def child_code(who: str, n: int, fast: int, slow: int, cash: float) -> str:
    """The child script for ``who`` ("ours" or "vectorbt") on ``n`` bars."""
    setup, run = (OURS_SETUP, OURS_RUN) if who == "ours" else (VBT_SETUP, VBT_RUN)
    package = "traderunner" if who == "ours" else "vectorbt"
    return CHILD.format(
        n=n, setup=setup, run=run.format(fast=fast, slow=slow, cash=cash), package=package
    )


def cold_run(
    who: str, n: int, fast: int, slow: int, cash: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """One fresh process: its own timings and memory, plus the parent's wall clock of it."""
    out, wall = run_child(child_code(who, n, fast, slow, cash), env)
    return {**out, "process_wall_s": wall}
