"""A user strategy that records every execution, for the fault tests (TRADERUNNER_STRATEGY_PATH).

Each run appends one line per symbol, ``"{job} {symbol} {pid}"``, to the file ``log`` as it
starts on that symbol (O_APPEND: lines from concurrent processes never interleave), then holds
for ``hold_ms`` so that a kill can land while it runs. Its target: long on every other run of
20 bars, so a backtest trades.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from traderunner.strategies import Strategy, StrategyParams, param


class Counting(Strategy):
    """Counts its own executions in a file (fault tests)."""

    name = "counting"
    description = "appends a line per symbol run to a file, then holds (fault tests)"

    @dataclass(frozen=True, slots=True)
    class Params(StrategyParams):
        job: int = param(0, low=0, high=1_000_000, doc="which job this is, written to the log")
        hold_ms: int = param(0, low=0, high=60_000, doc="milliseconds to hold per symbol")
        log: str = param("", doc="file that gets one line per symbol run")

    def indicators(self, candles):
        return {}

    def signals(self, candles, indicators):
        if self.params.log:
            fd = os.open(self.params.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, f"{self.params.job} {candles.symbol} {os.getpid()}\n".encode())
            finally:
                os.close(fd)
        time.sleep(self.params.hold_ms / 1000.0)
        return ((np.arange(len(candles)) // 20) % 2).astype(np.int8)
