"""The bus's tunables in one frozen value, built from Settings by the entrypoint."""

from __future__ import annotations

from dataclasses import dataclass

from traderunner.config import Settings
from traderunner.redisdb.keys import BUS_DEAD_MAXLEN, BUS_STREAM_MAXLEN


@dataclass(frozen=True, slots=True)
class BusOptions:
    """How publishers trim and consumers read, claim, retry and dead-letter.

    stream_maxlen   entries a topic's stream keeps (``XADD MAXLEN ~``: Redis trims whole
                    nodes, so a little more stays); ``TRADERUNNER_BUS_STREAM_MAXLEN``
    dead_maxlen     dead letters a topic keeps
    claim_idle      seconds an entry may stay unacknowledged before another consumer of the
                    group takes it over (``XAUTOCLAIM``): longer than the slowest handler, or a
                    slow entry is handled twice; ``TRADERUNNER_BUS_CLAIM_IDLE``
    max_deliveries  deliveries before an entry is dead-lettered: a handler that raised that
                    many times (``handler_failed``) or consumers that died holding it
                    (``undeliverable``); ``TRADERUNNER_BUS_MAX_DELIVERIES``
    block           seconds one ``XREADGROUP`` waits for new entries (how soon ``stop()`` is
                    noticed; an entry arriving wakes it at once); at most 5, below the
                    client's socket timeout
    batch           entries read or claimed per call
    retry_delay     first wait before a failed handler is called again with the same entry,
                    doubled each time up to ``retry_cap``
    reconnect_for   seconds a publisher keeps retrying a Redis that is down or loading before
                    it raises RedisError (the consumer retries for ever: it has nothing to lose)
    forget_idle     seconds after which a member of the group that holds nothing and was not
                    seen is deleted from it (a process gone for good under a name not reused)
    """

    stream_maxlen: int = BUS_STREAM_MAXLEN
    dead_maxlen: int = BUS_DEAD_MAXLEN
    claim_idle: float = 30.0
    max_deliveries: int = 5
    block: float = 1.0
    batch: int = 100
    retry_delay: float = 0.1
    retry_cap: float = 5.0
    reconnect_for: float = 60.0
    forget_idle: float = 86400.0

    def __post_init__(self) -> None:
        for name in ("stream_maxlen", "dead_maxlen", "max_deliveries", "batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"BusOptions.{name} must be >= 1, not {getattr(self, name)}")
        for name in ("claim_idle", "block", "retry_delay", "retry_cap", "forget_idle"):
            if not getattr(self, name) > 0:
                raise ValueError(f"BusOptions.{name} must be > 0, not {getattr(self, name)}")
        if self.block > 5:
            # redis-py would time the blocked read out (connect() sets a 10 s socket timeout)
            raise ValueError(f"BusOptions.block must be <= 5 s, not {self.block}")
        if self.reconnect_for < 0:
            raise ValueError(f"BusOptions.reconnect_for must be >= 0, not {self.reconnect_for}")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: float) -> BusOptions:
        values: dict[str, float] = {
            "stream_maxlen": settings.bus_stream_maxlen,
            "claim_idle": settings.bus_claim_idle,
            "max_deliveries": settings.bus_max_deliveries,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    @property
    def claim_idle_ms(self) -> int:
        return max(1, round(self.claim_idle * 1000))

    @property
    def block_ms(self) -> int:
        return max(1, round(self.block * 1000))
