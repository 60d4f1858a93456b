"""Publishing: ``XADD`` to the topic's stream (durable, trimmed) and ``PUBLISH`` of the same
envelope on its channel (ephemeral, for live screens), pipelined in one round trip."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import redis

from traderunner.bus.envelope import Envelope
from traderunner.bus.options import BusOptions
from traderunner.bus.topics import check_topic
from traderunner.errors import RedisError
from traderunner.redisdb.keys import Keys

log = logging.getLogger(__name__)

#: The stream entry's one field: the envelope's JSON.
FIELD = "envelope"

#: Redis is down, restarting or still loading its AOF: worth waiting for.
REDIS_DOWN: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError, OSError)


def server_of(client: redis.Redis) -> str:
    """``host:port`` of ``client``'s server, for messages (never the password)."""
    kwargs = client.connection_pool.connection_kwargs
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


class Publisher:
    """Sends envelopes to topics. Thread-safe (redis-py's pool); connections are passed in.

    Delivery is at least once: if the connection drops after Redis appended an entry but
    before the reply arrived, the retry appends it again, with the same envelope id. Readers
    therefore treat the envelope id as the idempotency key (see the package docstring).
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        options: BusOptions | None = None,
        *,
        live: bool = True,
    ) -> None:
        """``live``: also PUBLISH each envelope on the topic's channel (for live screens)."""
        self.redis = client
        self.keys = keys
        self.options = options or BusOptions()
        self.live = live

    def publish(self, envelope: Envelope) -> str:
        """Append ``envelope`` to its topic's stream (and its channel); the stream entry id.

        MessageError for a payload JSON cannot hold (nothing is sent); RedisError when Redis
        stays unreachable for ``options.reconnect_for`` seconds.
        """
        return self.publish_many([envelope])[0]

    def publish_many(self, envelopes: Sequence[Envelope]) -> list[str]:
        """Append several envelopes in one round trip, in order; their stream entry ids.

        Every envelope is encoded before anything is sent, so a bad payload sends none.
        """
        if not envelopes:
            return []
        wire = [(check_topic(e.topic), e.encode()) for e in envelopes]
        deadline = time.monotonic() + self.options.reconnect_for
        delay = 0.05
        failing = False
        while True:
            try:
                ids = self._send(wire)
            except redis.ResponseError as exc:
                # OOM (the durable server is full: noeviction), WRONGTYPE, NOPERM...
                why = str(exc).split("caused error: ", 1)[-1]  # not redis-py's command echo
                raise RedisError(
                    f"bus: the durable Redis at {server_of(self.redis)} refused publishing to "
                    f"{wire[0][0]!r}: {why}; check its maxmemory and `traderunner redis status`"
                ) from None
            except REDIS_DOWN as exc:
                if time.monotonic() + delay > deadline:
                    raise RedisError(
                        f"bus: cannot publish to {wire[0][0]!r}: the durable Redis at "
                        f"{server_of(self.redis)} has not answered for "
                        f"{self.options.reconnect_for:g} s ({exc}); check `traderunner redis "
                        "status` or TRADERUNNER_REDIS_URL"
                    ) from None
                if not failing:
                    log.warning("bus: publishing waits for Redis (%s); retrying", exc)
                    failing = True
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            if failing:
                log.warning("bus: publishing resumed")
            return ids

    def _send(self, wire: list[tuple[str, str]]) -> list[str]:
        pipe = self.redis.pipeline(transaction=False)
        for topic, text in wire:
            pipe.xadd(
                self.keys.bus_stream(topic),
                {FIELD: text},
                maxlen=self.options.stream_maxlen,
                approximate=True,
            )
            if self.live:
                pipe.publish(self.keys.bus_channel(topic), text)
        replies = pipe.execute()
        step = 2 if self.live else 1
        return [_text(r) for r in replies[::step]]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
