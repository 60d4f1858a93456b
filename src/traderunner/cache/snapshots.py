"""The positions snapshot of a paper account in the cache Redis, for the screens.

The trader writes it after the bars it records (``positions:{account}``, JSON, TTL
``POSITIONS_SNAPSHOT_TTL``); screens read it instead of querying the store. Like everything
in the cache it can be rebuilt from the store, and a cache failure never fails the caller:
:func:`put_snapshot` logs and returns False, :func:`read_snapshot` returns None.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import redis

from traderunner.redisdb.keys import POSITIONS_SNAPSHOT_TTL, Keys

log = logging.getLogger(__name__)


def put_snapshot(
    client: redis.Redis, keys: Keys, account: str, snapshot: Mapping[str, Any]
) -> bool:
    """Replace the snapshot of ``account``; False (logged) when the cache is unreachable."""
    try:
        client.set(
            keys.positions_snapshot(account),
            json.dumps(snapshot, separators=(",", ":"), allow_nan=False),
            ex=POSITIONS_SNAPSHOT_TTL,
        )
    except (redis.RedisError, OSError, ValueError) as exc:
        log.warning("cache: cannot write the positions snapshot of %s: %s", account, exc)
        return False
    return True


def read_snapshot(client: redis.Redis, keys: Keys, account: str) -> dict[str, Any] | None:
    """The snapshot of ``account``, or None (none written, expired, or the cache is down)."""
    try:
        raw: Any = client.get(keys.positions_snapshot(account))
    except (redis.RedisError, OSError) as exc:
        log.warning("cache: cannot read the positions snapshot of %s: %s", account, exc)
        return None
    if raw is None:
        return None
    try:
        found = json.loads(raw)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None
