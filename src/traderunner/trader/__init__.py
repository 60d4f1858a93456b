"""The automatic paper trader: signals → risk checks → orders → paper fills → the store.

::

    from traderunner.trader import TraderService, PaperBroker, RiskChecks, RiskLimits, KillSwitch
    trader = TraderService(store, durable_redis, keys, RiskChecks(limits, KillSwitch(r, keys)))
    trader.start(); ...; trader.stop()

It never imports ``marketdata`` or ``signals``: it hears from the stream service only
through the bus (topics ``signals`` and ``candles.{tf}``, payloads in ``domain/live.py``).
The :class:`Broker` seam has one implementation, :class:`PaperBroker`, which fills with the
engine's own per-bar step. Notifications go out in the background (notify.py).

The names below are loaded on first use, so the kill switch, the risk limits and the notifier
(``traderunner.trader.killswitch`` ...) import without the broker, and so without the engine's
step and numba: a reader such as the dashboard, or ``trader halt``, maps no compiler.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from traderunner.trader.broker import Broker, PaperBroker, sleeve_cash
    from traderunner.trader.killswitch import KillSwitch
    from traderunner.trader.notify import Notifier, Telegram
    from traderunner.trader.risk import RiskChecks, RiskLimits
    from traderunner.trader.service import TraderCounters, TraderService

_WHERE = {
    "Broker": "traderunner.trader.broker",
    "PaperBroker": "traderunner.trader.broker",
    "sleeve_cash": "traderunner.trader.broker",
    "KillSwitch": "traderunner.trader.killswitch",
    "Notifier": "traderunner.trader.notify",
    "Telegram": "traderunner.trader.notify",
    "RiskChecks": "traderunner.trader.risk",
    "RiskLimits": "traderunner.trader.risk",
    "TraderCounters": "traderunner.trader.service",
    "TraderService": "traderunner.trader.service",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'traderunner.trader' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


__all__ = [
    "Broker",
    "KillSwitch",
    "Notifier",
    "PaperBroker",
    "RiskChecks",
    "RiskLimits",
    "Telegram",
    "TraderCounters",
    "TraderService",
    "sleeve_cash",
]
