"""Correctness checks: did the contestants compute the same backtest?

Each check is a dict ``{name, passed, ours, peer, tolerance[, diff]}`` that goes into the
report as is; ``engine.py`` turns any failure into a loud line and exit code 1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Allowed |log((1 + R_ours) / (1 + R_peer))| for contestants holding fractional units.
EXACT_TOL = 1e-8


def check_trades(
    name: str, ours: int, peer: int, ours_last_open: bool, peer_counts_open: bool
) -> dict[str, Any]:
    """Equal counts, or ours one higher when our last trade was closed only by the end of the
    data (exit_reason ``end``) and the peer leaves such a trade out of its count."""
    allowed = {0} | ({1} if ours_last_open and not peer_counts_open else set())
    return {
        "name": name,
        "passed": (ours - peer) in allowed,
        "ours": ours,
        "peer": peer,
        "tolerance": "equal" if allowed == {0} else "equal, or +1 for our open final trade",
    }


def check_return(name: str, ours: float, peer: float, tol: float) -> dict[str, Any]:
    """Total returns agree when their growth factors do, in log terms, within ``tol``."""
    diff = abs(math.log1p(ours) - math.log1p(peer)) if ours > -1 and peer > -1 else math.inf
    return {
        "name": name,
        "passed": diff <= tol,
        "ours": ours,
        "peer": peer,
        "diff": diff,
        "tolerance": f"|log growth diff| <= {tol:.2e}",
    }


def bt_rounding_bound(result: Any) -> float:
    """Largest |log growth difference| backtesting.py's whole-unit orders can cause.

    Each entry leaves cash L < price P uninvested out of equity E, which scales that trade's
    growth (1 + r) by 1 - (L / E) r / (1 + r); so the total is at most
    max(P) / min(E) * sum |r| / (1 + r) over our trades (r = each trade's return).
    """
    trades = result.trades
    r = trades["return"].to_numpy(dtype=np.float64)
    max_price = float(np.max(trades["entry_price"].to_numpy(dtype=np.float64), initial=0.0))
    min_equity = float(result.equity.min())
    return max_price / min_equity * float(np.sum(np.abs(r) / (1.0 + r))) + EXACT_TOL
