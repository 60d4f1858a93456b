"""The kill switch as the Live page reads and sets it.

The switch is one key in the durable Redis, ``keys.trader_halt()``, holding
``{"by", "reason", "at"}`` while set (``trader/killswitch.py`` is its owner and documents it).
The dashboard cannot import ``traderunner.trader``: the package's ``__init__`` loads the paper
broker, which loads the engine's step (numba). So these three calls speak the same key and the
same JSON; ``tests/e2e`` checks the trader's ``KillSwitch`` reads what they write.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from traderunner.redisdb.keys import Keys


def switch_state(client: redis.Redis, keys: Keys) -> dict[str, Any] | None:
    raw: Any = client.get(keys.trader_halt())
    if raw is None:
        return None
    try:
        found = json.loads(raw)
    except ValueError:
        found = None
    return found if isinstance(found, dict) else {"by": "?", "reason": str(raw), "at": 0}


def halt(client: redis.Redis, keys: Keys, by: str, reason: str) -> bool:
    """Set the switch; False when it was set already (the first reason is kept)."""
    value = json.dumps({"by": by, "reason": reason, "at": time.time()})
    return bool(client.set(keys.trader_halt(), value, nx=True))


def resume(client: redis.Redis, keys: Keys) -> bool:
    return bool(client.delete(keys.trader_halt()))
