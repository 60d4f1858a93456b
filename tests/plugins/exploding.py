"""A user strategy that raises on purpose: loaded through TRADERUNNER_STRATEGY_PATH."""

from __future__ import annotations

from dataclasses import dataclass

from traderunner.strategies import Strategy, StrategyParams, param


class Exploding(Strategy):
    """A user strategy that raises on purpose (fault tests)."""

    name = "exploding"
    description = "raises inside signals()"

    @dataclass(frozen=True, slots=True)
    class Params(StrategyParams):
        bar: int = param(3, low=0, high=100, doc="bar it claims to fail at")

    def indicators(self, candles):
        return {}

    def signals(self, candles, indicators):
        raise RuntimeError(f"exploding strategy: division by zero at bar {self.params.bar}")
