"""A real strategy for engine tests whose signals are given, so a test states the targets."""

from __future__ import annotations

from typing import Any

import numpy as np

from traderunner.domain.candles import CandleArrays
from traderunner.strategies.base import Indicators, SignalArray, Strategy


class GivenTargets(Strategy):
    """A real strategy whose signals are the target array it was built with."""

    name = "given_targets"
    description = "returns a fixed target array"

    def __init__(self, targets: Any) -> None:
        super().__init__()
        self.targets = np.asarray(targets, dtype=np.int8)

    def indicators(self, candles: CandleArrays) -> Indicators:
        return {}

    def signals(self, candles: CandleArrays, indicators: Indicators) -> SignalArray:
        return self.targets
