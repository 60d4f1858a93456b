"""Hand-computed fills: every expected price, size and PnL below is derived in the comments.

The seven daily bars (see conftest.BARS), open / high / low / close:

    bar 0: 100 101  99 100      bar 4: 106 108 100 101
    bar 1: 100 103  99 102      bar 5: 101 102  98  99
    bar 2: 104 106 103 105      bar 6:  99 100  97  98
    bar 3: 105 107 104 106

Cash is 1000 everywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.enginehelpers import GivenTargets

from traderunner.domain.candles import CandleArrays
from traderunner.engine import BacktestResult, run_backtest


def bt(targets: list[int], candles: CandleArrays, **options: Any) -> BacktestResult:
    options.setdefault("cash", 1000.0)
    return run_backtest(GivenTargets(targets), candles, **options)


def one_trade(result: BacktestResult) -> dict[str, Any]:
    assert result.n_trades == 1
    return dict(result.trades.iloc[0])


def ts(candles: CandleArrays, i: int) -> pd.Timestamp:
    return pd.Timestamp(int(candles.ts[i]), tz="UTC")


def test_next_open_fills_at_the_following_open(bars: CandleArrays) -> None:
    # Target turns 1 on bar 1's close -> buy at open[2] = 104; turns 0 on bar 3's close ->
    # sell at open[4] = 106. Units = 1000 / 104.
    r = bt([0, 1, 1, 0, 0, 0, 0], bars)
    t = one_trade(r)
    units = 1000 / 104
    assert t["entry_time"] == ts(bars, 2)
    assert t["exit_time"] == ts(bars, 4)
    assert t["entry_price"] == pytest.approx(104.0)
    assert t["exit_price"] == pytest.approx(106.0)
    assert t["size"] == pytest.approx(units)
    assert t["pnl"] == pytest.approx(units * 2)  # 19.2307...
    assert t["return"] == pytest.approx(2 / 104)
    assert t["bars"] == 2
    assert t["exit_reason"] == "signal"
    assert t["fees"] == 0.0
    # Equity: flat until the open fill, then cash 0 + units * close.
    expected = [1000, 1000, units * 105, units * 106, units * 106, units * 106, units * 106]
    np.testing.assert_allclose(r.equity.to_numpy(), expected)
    np.testing.assert_allclose(r.symbols["TEST"].position, [0, 0, units, units, 0, 0, 0])
    assert r.metrics["end_value"] == pytest.approx(1000 + units * 2)


def test_close_fills_at_the_signal_bar_close(bars: CandleArrays) -> None:
    # Buy at close[1] = 102, sell at close[3] = 106: pnl = 1000/102 * 4 = 39.2157.
    r = bt([0, 1, 1, 0, 0, 0, 0], bars, fill="close")
    t = one_trade(r)
    assert (t["entry_time"], t["exit_time"]) == (ts(bars, 1), ts(bars, 3))
    assert (t["entry_price"], t["exit_price"]) == (102.0, 106.0)
    assert t["pnl"] == pytest.approx(1000 / 102 * 4)
    assert t["bars"] == 2


def test_fees_bps_and_fee_per_order(bars: CandleArrays) -> None:
    # 10 bps and 1.0 per order. Units = (1000 - 1) / (104 * 1.001), so buying costs exactly
    # the cash: units*104 + units*104*0.001 + 1 = 999 + 1.
    r = bt([0, 1, 1, 0, 0, 0, 0], bars, fees_bps=10, fee_per_order=1.0)
    t = one_trade(r)
    units = 999 / (104 * 1.001)
    entry_fee = units * 104 * 0.001 + 1  # 1.998
    exit_fee = units * 106 * 0.001 + 1  # 2.0172...
    assert t["size"] == pytest.approx(units)
    assert t["fees"] == pytest.approx(entry_fee + exit_fee)
    assert t["pnl"] == pytest.approx(units * (106 - 104) - entry_fee - exit_fee)
    # Cash after the entry is 0, so equity on bar 2 is units * close.
    assert r.equity.iloc[2] == pytest.approx(units * 105)
    assert r.metrics["end_value"] == pytest.approx(1000 + t["pnl"])


def test_slippage_moves_both_fills_against_the_trader(bars: CandleArrays) -> None:
    # 50 bps: buy at 104 * 1.005 = 104.52, sell at 106 * 0.995 = 105.47.
    t = one_trade(bt([0, 1, 1, 0, 0, 0, 0], bars, slippage_bps=50))
    assert t["entry_price"] == pytest.approx(104.52)
    assert t["exit_price"] == pytest.approx(105.47)
    assert t["pnl"] == pytest.approx(1000 / 104.52 * 0.95)  # 9.0892


def test_size_below_one_keeps_the_rest_in_cash(bars: CandleArrays) -> None:
    # size 0.5: units = 500 / 104; equity on bar 2 = 500 cash + units * 105.
    r = bt([0, 1, 1, 0, 0, 0, 0], bars, size=0.5)
    t = one_trade(r)
    units = 500 / 104
    assert t["size"] == pytest.approx(units)
    assert t["pnl"] == pytest.approx(units * 2)
    assert r.equity.iloc[2] == pytest.approx(500 + units * 105)


def test_stop_loss_fills_at_the_level(bars: CandleArrays) -> None:
    # Entry 104 at open[2]; stop 3% -> 104 * 0.97 = 100.88. Bars 2 and 3 stay above; bar 4
    # opens at 106 and trades down to 100, so it fills at 100.88: pnl = 1000/104 * -3.12 = -30.
    r = bt([0, 1, 1, 1, 1, 1, 1], bars, stop_loss=0.03)
    t = one_trade(r)
    assert t["exit_time"] == ts(bars, 4)
    assert t["exit_price"] == pytest.approx(100.88)
    assert t["pnl"] == pytest.approx(-30.0)
    assert t["exit_reason"] == "stop_loss"
    # The target stays 1 but the engine does not re-enter after the stop.
    np.testing.assert_allclose(r.equity.to_numpy()[4:], [970.0, 970.0, 970.0])


def test_stop_loss_on_the_entry_bar_for_next_open(make_candles: Any) -> None:
    # next_open entries are stop-checked on their own bar: entry at open[2] = 104, stop 2% at
    # 101.92, bar 2's low is 101 -> stopped on the entry bar, bars = 0, pnl = 1000/104*-2.08.
    rows = [(100, 101, 99, 100), (100, 103, 99, 102), (104, 106, 101, 105), (105, 107, 104, 106)]
    t = one_trade(bt([0, 1, 1, 1], make_candles(rows), stop_loss=0.02))
    assert t["bars"] == 0
    assert t["exit_price"] == pytest.approx(101.92)
    assert t["pnl"] == pytest.approx(-20.0)


def test_close_fill_stops_start_on_the_next_bar(bars: CandleArrays) -> None:
    # Entry at close[1] = 102; stop 1% = 100.98. Bar 1's own low (99) must not count. Bars 2
    # and 3 stay above; bar 4's low 100 hits: pnl = 1000/102 * (100.98 - 102) = -10.
    t = one_trade(bt([0, 1, 1, 1, 1, 1, 1], bars, fill="close", stop_loss=0.01))
    assert t["exit_time"] == ts(bars, 4)
    assert t["exit_price"] == pytest.approx(100.98)
    assert t["pnl"] == pytest.approx(-10.0)


def test_take_profit_fills_at_the_level(bars: CandleArrays) -> None:
    # Entry 104; take profit 2% = 106.08. Bar 2's high 106 is short of it; bar 3 opens at 105
    # and reaches 107 -> fill 106.08: pnl = 1000/104 * 2.08 = 20.
    t = one_trade(bt([0, 1, 1, 1, 1, 1, 1], bars, take_profit=0.02))
    assert t["exit_time"] == ts(bars, 3)
    assert t["exit_price"] == pytest.approx(106.08)
    assert t["pnl"] == pytest.approx(20.0)
    assert t["exit_reason"] == "take_profit"


def test_take_profit_gap_fills_at_the_open(bars: CandleArrays) -> None:
    # fill=close: entry at close[1] = 102, take profit 1% = 103.02. Bar 2 opens at 104, above
    # the level, so it fills at the open 104: pnl = 1000/102 * 2.
    t = one_trade(bt([0, 1, 1, 1, 1, 1, 1], bars, fill="close", take_profit=0.01))
    assert t["exit_price"] == pytest.approx(104.0)
    assert t["pnl"] == pytest.approx(1000 / 102 * 2)


def test_trailing_stop_follows_the_peak(bars: CandleArrays) -> None:
    # Entry 104, trail 3%. Bar 2: peak max(104, open 104) = 104, level 100.88, low 103 ok;
    # then the peak takes bar 2's high 106. Bar 3: level 106 * 0.97 = 102.82, low 104 ok; peak
    # -> 107. Bar 4: level 107 * 0.97 = 103.79, opens 106, low 100 -> fill 103.79.
    t = one_trade(bt([0, 1, 1, 1, 1, 1, 1], bars, trailing_stop=0.03))
    assert t["exit_time"] == ts(bars, 4)
    assert t["exit_price"] == pytest.approx(103.79)
    assert t["pnl"] == pytest.approx(1000 / 104 * (103.79 - 104))
    assert t["exit_reason"] == "trailing_stop"


def test_trailing_above_stop_loss_wins_and_names_the_exit(bars: CandleArrays) -> None:
    # Both 3%: on bar 4 the stop-loss level is 100.88 and the trailing level 103.79; the
    # higher one (nearer the open) is the fill.
    t = one_trade(bt([0, 1, 1, 1, 1, 1, 1], bars, stop_loss=0.03, trailing_stop=0.03))
    assert t["exit_price"] == pytest.approx(103.79)
    assert t["exit_reason"] == "trailing_stop"


def test_stop_and_take_profit_in_one_bar_assume_the_stop(bars: CandleArrays) -> None:
    # Stop 3% = 100.88, take profit 3% = 107.12. Bar 3's high 107 misses the target; bar 4
    # spans 100..108 and touches both: the stop is assumed first.
    t = one_trade(bt([0, 1, 1, 1, 1, 1, 1], bars, stop_loss=0.03, take_profit=0.03))
    assert t["exit_price"] == pytest.approx(100.88)
    assert t["exit_reason"] == "stop_loss"


def test_gap_through_the_stop_fills_at_the_open(make_candles: Any) -> None:
    # Like the stop-loss case but bar 4 opens at 100, below the 100.88 stop: fill at 100,
    # pnl = 1000/104 * -4 = -38.46.
    rows = [
        (100, 101, 99, 100),
        (100, 103, 99, 102),
        (104, 106, 103, 105),
        (105, 107, 104, 106),
        (100, 101, 97, 98),
        (98, 99, 97, 98),
    ]
    t = one_trade(bt([0, 1, 1, 1, 1, 1], make_candles(rows), stop_loss=0.03))
    assert t["exit_price"] == pytest.approx(100.0)
    assert t["pnl"] == pytest.approx(1000 / 104 * -4)
    assert t["exit_reason"] == "stop_loss"


def test_stop_fill_pays_slippage(bars: CandleArrays) -> None:
    # 10 bps slippage: entry 104 * 1.001 = 104.104, stop 3% = 104.104 * 0.97 = 100.98088,
    # the sell fills 10 bps lower: 100.98088 * 0.999.
    t = one_trade(bt([0, 1, 1, 1, 1, 1, 1], bars, stop_loss=0.03, slippage_bps=10))
    entry = 104 * 1.001
    exit_ = entry * 0.97 * 0.999
    assert t["entry_price"] == pytest.approx(entry)
    assert t["exit_price"] == pytest.approx(exit_)
    assert t["pnl"] == pytest.approx(1000 / entry * (exit_ - entry))


def test_short_side(bars: CandleArrays) -> None:
    # Sell 1000/104 units at open[2] = 104, buy back at open[4] = 106: pnl = -1000/104 * 2.
    # Equity on bar 2 = cash 2000 - units * 105.
    r = bt([0, -1, -1, 0, 0, 0, 0], bars, direction="short")
    t = one_trade(r)
    units = 1000 / 104
    assert t["size"] == pytest.approx(-units)
    assert t["pnl"] == pytest.approx(-units * 2)
    assert r.equity.iloc[2] == pytest.approx(2000 - units * 105)
    assert r.symbols["TEST"].position[2] == pytest.approx(-units)


def test_short_stop_loss_and_trailing(bars: CandleArrays) -> None:
    # Short at 104. Stop 2% = 106.08. Trailing 2%: bar 2 trough min(104, open 104) = 104,
    # level 106.08, high 106 ok; the trough then takes bar 2's low 103. Bar 3: trailing level
    # 103 * 1.02 = 105.06 (below the stop, so nearer the open 105); high 107 -> fill 105.06.
    only_stop = one_trade(bt([0, -1, -1, -1, 0, 0, 0], bars, direction="short", stop_loss=0.02))
    assert only_stop["exit_price"] == pytest.approx(106.08)
    assert only_stop["pnl"] == pytest.approx(-20.0)
    both = one_trade(
        bt([0, -1, -1, -1, 0, 0, 0], bars, direction="short", stop_loss=0.02, trailing_stop=0.02)
    )
    assert both["exit_price"] == pytest.approx(105.06)
    assert both["exit_reason"] == "trailing_stop"
    assert both["pnl"] == pytest.approx(-1000 / 104 * 1.06)


def test_short_take_profit(bars: CandleArrays) -> None:
    # Short at 104, take profit 3% = 100.88; bar 4 trades down to 100 -> buy at 100.88: +30.
    t = one_trade(bt([0, -1, -1, -1, -1, -1, -1], bars, direction="short", take_profit=0.03))
    assert t["exit_price"] == pytest.approx(100.88)
    assert t["pnl"] == pytest.approx(30.0)


def test_direction_filter_drops_the_other_side(bars: CandleArrays) -> None:
    assert bt([0, -1, -1, 0, 0, 0, 0], bars, direction="long").n_trades == 0
    assert bt([0, 1, 1, 0, 0, 0, 0], bars, direction="short").n_trades == 0
    # long keeps the +1 part of a mixed target only.
    t = one_trade(bt([0, 1, 1, -1, -1, 0, 0], bars, direction="long"))
    assert t["exit_price"] == 106.0


def test_reversal_is_two_fills_at_one_price(bars: CandleArrays) -> None:
    # both: long at open[2] = 104 (units 1000/104); target -1 on bar 3 -> at open[4] = 106
    # close the long (+19.23, equity 1000/104*106) and short equity/106 = 1000/104 units;
    # target 0 on bar 5 -> buy back at open[6] = 99: +1000/104 * 7 = 67.31.
    r = bt([0, 1, 1, -1, -1, 0, 0], bars, direction="both")
    assert r.n_trades == 2
    first, second = (dict(r.trades.iloc[i]) for i in range(2))
    units = 1000 / 104
    assert (first["exit_price"], second["entry_price"]) == (106.0, 106.0)
    assert first["exit_time"] == second["entry_time"] == ts(bars, 4)
    assert first["pnl"] == pytest.approx(units * 2)
    assert second["size"] == pytest.approx(-units)
    assert second["exit_price"] == 99.0
    assert second["pnl"] == pytest.approx(units * 7)
    assert r.metrics["end_value"] == pytest.approx(1000 + units * 9)


def test_open_position_is_marked_at_the_last_close(bars: CandleArrays) -> None:
    # 10 bps fees: units = 1000 / (104 * 1.001), entry fee units*104*0.001. Still long after
    # bar 6, marked at close 98 with no exit fee: pnl = units*(98 - 104) - entry fee.
    r = bt([0, 1, 1, 1, 1, 1, 1], bars, fees_bps=10)
    t = one_trade(r)
    units = 1000 / (104 * 1.001)
    entry_fee = units * 104 * 0.001
    assert t["exit_reason"] == "end"
    assert t["exit_time"] == ts(bars, 6)
    assert t["exit_price"] == 98.0
    assert t["fees"] == pytest.approx(entry_fee)
    assert t["pnl"] == pytest.approx(units * -6 - entry_fee)
    assert r.equity.iloc[-1] == pytest.approx(1000 + t["pnl"])


def test_a_signal_on_the_last_bar_does_not_fill_with_next_open(bars: CandleArrays) -> None:
    assert bt([0, 0, 0, 0, 0, 0, 1], bars).n_trades == 0
    # ...but it does at the close.
    t = one_trade(bt([0, 0, 0, 0, 0, 0, 1], bars, fill="close"))
    assert (t["entry_price"], t["exit_reason"], t["pnl"]) == (98.0, "end", 0.0)


def test_no_reentry_until_the_target_changes(bars: CandleArrays) -> None:
    # Stop at 100.88 on bar 4 (as above); the target dips to 0 on bar 4 (already flat) and is
    # 1 again on bar 5 -> a new entry at open[6] = 99, marked at close 98 at the end.
    r = bt([0, 1, 1, 1, 0, 1, 1], bars, stop_loss=0.03)
    assert list(r.trades["exit_reason"]) == ["stop_loss", "end"]
    second = dict(r.trades.iloc[1])
    assert second["entry_price"] == 99.0
    assert second["size"] == pytest.approx(970 / 99)
    assert second["pnl"] == pytest.approx(970 / 99 * -1)


def test_close_fill_stop_is_checked_before_the_close_signal(bars: CandleArrays) -> None:
    # fill=close, both: long at close[1] = 102, stop 1% = 100.98 hit inside bar 4; the -1
    # signal on bar 4's close then opens a short at close[4] = 101 with equity 990.
    r = bt([0, 1, 1, 1, -1, -1, -1], bars, fill="close", direction="both", stop_loss=0.01)
    assert list(r.trades["exit_reason"]) == ["stop_loss", "end"]
    short = dict(r.trades.iloc[1])
    assert short["entry_price"] == 101.0
    assert short["size"] == pytest.approx(-990 / 101)
    # Bar 5: high 102 < 101 * 1.01 = 102.01, so the short survives to the end at 98.
    assert short["pnl"] == pytest.approx(990 / 101 * 3)
