"""The kill switch as the Live page reads and sets it: the trader's own :class:`KillSwitch`.

``traderunner.trader.killswitch`` imports without the paper broker, the engine's step and
numba (the package loads its names lazily; an import-linter contract and
``tests/integration/live/test_trader_imports.py`` hold that), so the dashboard uses the one
owner of the key ``keys.trader_halt()`` rather than a copy of its JSON.
"""

from __future__ import annotations

from typing import Any

import redis

from traderunner.redisdb.keys import Keys
from traderunner.trader.killswitch import KillSwitch


def switch_state(client: redis.Redis, keys: Keys) -> dict[str, Any] | None:
    """``{"by", "reason", "at"}`` while halted, else None (always read from Redis)."""
    return KillSwitch(client, keys).state()


def halt(client: redis.Redis, keys: Keys, by: str, reason: str) -> bool:
    """Set the switch; False when it was set already (the first reason is kept)."""
    return KillSwitch(client, keys).halt(by, reason)


def resume(client: redis.Redis, keys: Keys) -> bool:
    """Release the switch; False when it was not set."""
    return KillSwitch(client, keys).resume()
