"""Strategies: the interface (version 2), the built-ins and the registry of user plugins.

>>> from traderunner.strategies import get_strategy
>>> strategy = get_strategy("sma_cross")({"fast": 10, "slow": 50})

See ``docs/strategies.md`` for the contract, every built-in's rule and how to add your own.
"""

from traderunner.strategies.base import (
    INTERFACE_VERSION,
    SUPPORTED_INTERFACE_VERSIONS,
    Indicators,
    ParamSpec,
    SignalArray,
    Strategy,
    StrategyParams,
    param,
)
from traderunner.strategies.registry import (
    ENTRY_POINT_GROUP,
    available_strategies,
    clear_user_strategies,
    describe_strategies,
    get_strategy,
    load_strategy_file,
    load_user_strategies,
    register,
    strategy_origin,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "INTERFACE_VERSION",
    "SUPPORTED_INTERFACE_VERSIONS",
    "Indicators",
    "ParamSpec",
    "SignalArray",
    "Strategy",
    "StrategyParams",
    "available_strategies",
    "clear_user_strategies",
    "describe_strategies",
    "get_strategy",
    "load_strategy_file",
    "load_user_strategies",
    "param",
    "register",
    "strategy_origin",
]
