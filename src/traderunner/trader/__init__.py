"""The automatic paper trader: signals → risk checks → orders → paper fills → the store.

::

    from traderunner.trader import TraderService, PaperBroker, RiskChecks, RiskLimits, KillSwitch
    trader = TraderService(store, durable_redis, keys, RiskChecks(limits, KillSwitch(r, keys)))
    trader.start(); ...; trader.stop()

It never imports ``marketdata`` or ``signals``: it hears from the stream service only
through the bus (topics ``signals`` and ``candles.{tf}``, payloads in ``domain/live.py``).
The :class:`Broker` seam has one implementation, :class:`PaperBroker`, which fills with the
engine's own per-bar step. Notifications go out in the background (notify.py).
"""

from traderunner.trader.broker import Broker, PaperBroker, sleeve_cash
from traderunner.trader.killswitch import KillSwitch
from traderunner.trader.notify import Notifier, Telegram
from traderunner.trader.risk import RiskChecks, RiskLimits
from traderunner.trader.service import TraderCounters, TraderService

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
