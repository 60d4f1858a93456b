"""The price adjustments a daily backtest can use (applied by ``marketdata.adjust``).

``all`` (default): split- and dividend-adjusted (EODHD's ``adjusted_close``); ``splits``: split
steps only; ``none``: raw prices as traded.
"""

from __future__ import annotations

from typing import Any

from traderunner.errors import OptionError

ADJUST_MODES = ("none", "splits", "all")
DEFAULT_ADJUST = "all"


def parse_adjust(value: Any) -> str:
    """``value`` as one of :data:`ADJUST_MODES` (None or empty: the default), else OptionError."""
    text = DEFAULT_ADJUST if value is None or value == "" else str(value).strip().lower()
    if text not in ADJUST_MODES:
        raise OptionError(
            f"adjust {value!r} is not a mode: use none (raw prices), splits or all "
            "(split- and dividend-adjusted daily prices, the default)"
        )
    return text
