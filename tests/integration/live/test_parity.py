"""Parity: a replay through the stream service and the trader (paper broker) gives the same
fills (time, side, units, price) and the same final equity as ``run_backtest`` of the same
strategy, candles and options: every built-in, long-only and long/short, three symbols.

In-process services on real Valkey and a real SQLite store; the CLI version (real processes)
is tests/integration/live/test_parity_cli.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.builtins import BUILT_IN_STRATEGIES
from tests.redishelpers import RedisPair
from traderunner.domain.live import LiveStrategy
from traderunner.engine import run_backtest
from traderunner.marketdata import load_demo

from .livehelpers import TF, backtest_fills, bars_of, live_env

SYMBOLS = ("AAPL", "MSFT", "TSLA")
CASES = [
    (strategy, options)
    for strategy in BUILT_IN_STRATEGIES
    for options in (
        {"direction": "long"},
        {"direction": "both", "fees_bps": 2.0, "slippage_bps": 1.0, "units": "whole"},
    )
]
# Stops and fills at the close, on two strategies (the rules are the engine's either way).
CASES += [
    ("sma_cross", {"direction": "both", "fill": "close", "stop_loss": 0.004}),
    ("ema_cross", {"direction": "long", "trailing_stop": 0.003, "take_profit": 0.01}),
]


def test_replay_trades_like_the_backtest(redis_pair: RedisPair, tmp_path: Path) -> None:
    with live_env(redis_pair, tmp_path) as env:
        load_demo(env.store, SYMBOLS, TF, days=4)
        series = [env.store.candles.load(s, TF) for s in SYMBOLS]
        for i, (strategy, options) in enumerate(CASES):
            env.add(
                LiveStrategy(
                    name=f"c{i}",
                    strategy=strategy,
                    symbols=SYMBOLS,
                    timeframe=TF.value,
                    options=options,
                    account=f"acct{i}",
                )
            )
        env.trader.start()  # running while the stream publishes, as in production
        for bar in bars_of(series):
            env.stream.handle(bar)
        env.wait_idle(timeout=240)
        candles = {c.symbol: c for c in series}
        compared = 0
        for i, (strategy, options) in enumerate(CASES):
            result = run_backtest(strategy, candles, **options)
            fills = env.store.trading.fills(account=f"acct{i}")
            for symbol in SYMBOLS:
                want = backtest_fills(result, symbol)
                got = [(f.bar_ns, f.side, f.units, f.price) for f in fills if f.symbol == symbol]
                assert got == want, (strategy, options, symbol)
                compared += len(want)
            account = env.store.trading.account(f"acct{i}")
            assert account is not None
            final = float(result.equity.iloc[-1])
            assert account.equity == pytest.approx(final, rel=1e-12), (strategy, options)
        assert compared > 100  # the strategies did trade
        # every order is accounted for: filled or nothing to trade; open only when its fill
        # would be the open of a bar after the last one
        last = max(int(c.ts[-1]) for c in series)
        orders = env.store.trading.orders()
        assert orders and {o.status.value for o in orders} <= {"filled", "unchanged", "open"}
        assert all(o.bar_ns == last for o in orders if o.status.value == "open")
