"""The kill switch: one key in the durable Redis that every trader process obeys.

While ``trader:halt`` exists the trader refuses every order that would open or enlarge a
position (rejection check ``kill_switch``); exits still go through. ``traderunner trader
halt`` sets it by hand, the daily loss limit sets it by itself, ``traderunner trader resume``
deletes it. It lives in the durable Redis (noeviction, AOF), so it survives restarts. The
trader re-reads it at most every ``max_age`` seconds (0.25 s for ``traderunner trader``): a
switch set by hand takes effect within that; one tripped by the trader itself at once.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from traderunner.redisdb.keys import Keys


class KillSwitch:
    """Reads and sets the kill switch of one deployment (connections passed in)."""

    def __init__(self, client: redis.Redis, keys: Keys, *, max_age: float = 0.0) -> None:
        """``max_age``: seconds :meth:`state` may answer from its last read (the trader reads
        it before every entry order; 0 = always ask Redis)."""
        self.redis = client
        self.key = keys.trader_halt()
        self.max_age = max_age
        self._read_at = -1e18
        self._last: dict[str, Any] | None = None

    def state(self) -> dict[str, Any] | None:
        """``{"by", "reason", "at"}`` while halted, else None."""
        now = time.monotonic()
        if now - self._read_at < self.max_age:
            return self._last
        self._last = self._read()
        self._read_at = now
        return self._last

    def _read(self) -> dict[str, Any] | None:
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
        self._read_at = -1e18
        return bool(self.redis.set(self.key, value, nx=True))

    def resume(self) -> bool:
        """Release the switch; False when it was not set."""
        self._read_at = -1e18
        return bool(self.redis.delete(self.key))
