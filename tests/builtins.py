"""The seven built-in strategies, written out once for every test that expects them.

Deliberately a literal, not read from the registry: a built-in that fails to register must
fail these tests.
"""

BUILT_IN_STRATEGIES = (
    "sma_cross",
    "ema_cross",
    "macd",
    "rsi_reversion",
    "bollinger_reversion",
    "donchian_breakout",
    "opening_range_breakout",
)
