"""What a handler is given and what it may raise: the consumer's side of the contract
(see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis

from traderunner.bus.envelope import Envelope
from traderunner.errors import RedisError, StoreError

#: Handler errors that are not the entry's fault: retried without counting a delivery.
TRANSIENT: tuple[type[BaseException], ...] = (
    StoreError,
    RedisError,
    redis.ConnectionError,
    redis.TimeoutError,
    ConnectionError,
    TimeoutError,
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One entry handed to the handler.

    ``deliveries`` counts how often Redis handed it out (1 the first time); above 1 it may
    already have been handled, by this process or one that died before ``XACK``: the handler
    must then recognise ``envelope.id`` and do nothing again.
    """

    envelope: Envelope
    topic: str
    entry_id: str
    deliveries: int


Handler = Callable[[Delivery], None]


@dataclass(slots=True)
class Counters:
    """What this consumer did since it was built (for logs and the System page)."""

    handled: int = 0  # handler returned, entry acknowledged
    failed: int = 0  # handler calls that raised
    dead_lettered: int = 0
    claimed: int = 0  # entries taken over from consumers that died
    trimmed: int = 0  # entries trimmed before the group handled them (pending or unread)
    reconnects: int = 0
