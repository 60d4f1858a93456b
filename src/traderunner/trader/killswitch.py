"""The kill switch: one key in the durable Redis that every trader process obeys.

While ``trader:halt`` exists the trader refuses every order that would open or enlarge a
position (rejection check ``kill_switch``); exits still go through. ``traderunner trader
halt`` sets it by hand, the daily loss limit sets it by itself, ``traderunner trader resume``
deletes it. It lives in the durable Redis (noeviction, AOF), so it survives restarts.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from traderunner.redisdb.keys import Keys


class KillSwitch:
    """Reads and sets the kill switch of one deployment (connections passed in)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.key = keys.trader_halt()

    def state(self) -> dict[str, Any] | None:
        """``{"by", "reason", "at"}`` while halted, else None."""
        raw: Any = self.redis.get(self.key)
        if raw is None:
            return None
        try:
            found = json.loads(raw)
        except ValueError:
            found = None
        return found if isinstance(found, dict) else {"by": "?", "reason": str(raw), "at": 0}

    @property
    def halted(self) -> bool:
        return bool(self.redis.exists(self.key))

    def halt(self, by: str, reason: str) -> bool:
        """Trip the switch; False when it was already set (the first reason is kept)."""
        value = json.dumps({"by": by, "reason": reason, "at": time.time()})
        return bool(self.redis.set(self.key, value, nx=True))

    def resume(self) -> bool:
        """Release the switch; False when it was not set."""
        return bool(self.redis.delete(self.key))
