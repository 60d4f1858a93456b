"""Interface version 2 still loads version-1 user strategies; unknown versions are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from traderunner.domain.candles import CandleArrays
from traderunner.errors import StrategyLoadError
from traderunner.strategies import (
    INTERFACE_VERSION,
    describe_strategies,
    get_strategy,
    load_user_strategies,
)
from traderunner.strategies.live import target_at_last_bar

pytestmark = pytest.mark.usefixtures("fresh_registry")

# Written against interface version 1: no interface_version, no history_bars, no
# waits_for_change; only name, description, Params, warmup_bars, indicators and signals.
VERSION_1 = '''
from dataclasses import dataclass

import numpy as np

from traderunner.strategies import Strategy, StrategyParams, param
from traderunner.strategies.indicators import shift


@dataclass(frozen=True, slots=True)
class LookbackParams(StrategyParams):
    lookback: int = param(7, low=1, high=100, doc="bars to compare the close with")


class Lookback(Strategy):
    """Long (+1) while the close is above its value lookback bars ago, short (-1) below."""

    name = "lookback_v1"
    description = "close against the close lookback bars ago"
    Params = LookbackParams

    @property
    def warmup_bars(self):
        return self.params.lookback

    def indicators(self, candles):
        return {"past": shift(candles.close, self.params.lookback)}

    def signals(self, candles, indicators):
        with np.errstate(invalid="ignore"):
            up = candles.close > indicators["past"]
            down = candles.close < indicators["past"]
        return np.where(up, 1, np.where(down, -1, 0)).astype(np.int8)
'''


def walk(n: int, seed: int) -> CandleArrays:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    ts = (np.arange(n, dtype=np.int64) + 19_000) * 86_400 * 10**9
    return CandleArrays(ts=ts, open=close, high=close, low=close, close=close, volume=close)


def test_a_version_1_strategy_loads_and_gets_the_documented_history(tmp_path: Path) -> None:
    assert INTERFACE_VERSION == 2
    (tmp_path / "lookback.py").write_text(VERSION_1)
    assert load_user_strategies([tmp_path], entry_points=False) == ["lookback_v1"]
    cls = get_strategy("lookback_v1")
    assert cls.interface_version == 1
    strategy = cls({"lookback": 9})
    # The version-1 default: warmup_bars + 1, which is exact for this finite-window rule.
    assert strategy.history_bars() == 10
    assert strategy.waits_for_change is False
    listed = {d["name"]: d for d in describe_strategies()}["lookback_v1"]
    assert listed["interface_version"] == 1
    candles = walk(300, 5)
    full = strategy.target_positions(candles)
    assert not full[:9].any() and {-1, 1} <= set(full.tolist())
    for t in range(0, 300):
        window = candles.slice(max(0, t - 9), t + 1)
        assert target_at_last_bar(strategy, None, window) == full[t], t


def test_an_unknown_interface_version_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "future.py").write_text(
        VERSION_1.replace(
            '    name = "lookback_v1"', '    name = "future"\n    interface_version = 3'
        )
    )
    with pytest.raises(StrategyLoadError) as err:
        load_user_strategies([tmp_path], entry_points=False)
    message = str(err.value)
    assert "interface_version 3 is not one this traderunner supports (1 and 2)" in message
    assert "\n" not in message


def test_a_version_2_strategy_declares_its_history(tmp_path: Path) -> None:
    code = VERSION_1.replace(
        '    name = "lookback_v1"', '    name = "lookback_v2"\n    interface_version = 2'
    )
    code += (
        "\n    def history_bars(self, timeframe=None):\n        return 2 * self.params.lookback\n"
    )
    (tmp_path / "lookback2.py").write_text(code)
    assert load_user_strategies([tmp_path], entry_points=False) == ["lookback_v2"]
    strategy = get_strategy("lookback_v2")({"lookback": 4})
    assert strategy.interface_version == 2
    assert strategy.history_bars() == 8
