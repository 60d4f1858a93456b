"""The ephemeral side of the bus: following topics over Pub/Sub, for live screens.

Every publish also goes to the topic's channel (``bus:{topic}:live``). A :class:`LiveFeed`
subscribes to channels (a glob such as ``candles.*`` follows every timeframe) and yields the
envelopes as they come. It is a copy for eyes, not for work: whatever is published while the
subscriber is not connected is gone for it (``tests/integration/bus/test_pubsub_loss.py``
keeps that visible). Anything that must not miss a message reads the stream with a
:class:`~traderunner.bus.consumer.Consumer`. :func:`recent` reads the last entries of a
stream, so a screen (``signals tail``) can show what came before it started following.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, cast

import redis

from traderunner.bus.envelope import Envelope
from traderunner.bus.publisher import FIELD, REDIS_DOWN, server_of
from traderunner.errors import MessageError, RedisError
from traderunner.redisdb.keys import Keys

log = logging.getLogger(__name__)


class LiveFeed:
    """Subscribed to the channels of ``topics`` until closed (a context manager).

    Malformed messages are skipped (counted in ``malformed``); a lost connection is
    re-established on the next :meth:`get`, re-subscribing, and what was sent meanwhile is
    not recovered (``gaps`` counts the reconnects, so a screen can say so).
    """

    def __init__(self, client: redis.Redis, keys: Keys, topics: Sequence[str]) -> None:
        if not topics:
            raise ValueError("a live feed needs at least one topic")
        self.keys = keys
        self.topics = tuple(topics)
        self.malformed = 0
        self.gaps = 0
        self._pubsub = client.pubsub()
        try:
            self._subscribe(timeout=5.0)
        except REDIS_DOWN as exc:
            self.close()
            raise RedisError(
                f"bus: cannot follow {', '.join(self.topics)}: the durable Redis at "
                f"{server_of(client)} does not answer ({exc}); check `traderunner redis status` "
                "or TRADERUNNER_REDIS_URL"
            ) from None

    def _subscribe(self, timeout: float) -> None:
        """Subscribe, and return once Redis confirmed every channel: from then on, nothing
        published is missed (until the connection drops)."""
        exact = [self.keys.bus_channel(t) for t in self.topics if "*" not in t]
        globs = [self.keys.bus_channel(t) for t in self.topics if "*" in t]
        if exact:
            self._pubsub.subscribe(*exact)
        if globs:
            self._pubsub.psubscribe(*globs)
        confirmed = 0
        end = time.monotonic() + timeout
        while confirmed < len(exact) + len(globs) and time.monotonic() < end:
            message = self._pubsub.get_message(timeout=max(end - time.monotonic(), 0.0))
            if message is not None and message.get("type") in ("subscribe", "psubscribe"):
                confirmed += 1

    def get(self, timeout: float = 1.0) -> Envelope | None:
        """The next envelope, or None when none came within ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            try:
                message = self._pubsub.get_message(timeout=max(left, 0.0))
            except REDIS_DOWN:
                self.gaps += 1
                self._reconnect(end)
                message = None
            if message is not None and message.get("type") in ("message", "pmessage"):
                try:
                    return Envelope.decode(cast(Any, message["data"]))
                except MessageError as exc:
                    self.malformed += 1
                    log.debug("live feed skipped a malformed message: %s", exc)
            if time.monotonic() >= end:
                return None

    def __iter__(self) -> Iterator[Envelope]:
        """Envelopes for ever (until the caller stops iterating or closes the feed)."""
        while True:
            envelope = self.get(timeout=1.0)
            if envelope is not None:
                yield envelope

    def _reconnect(self, until: float) -> None:
        # redis-py re-subscribes on reconnect; while the server is down that raises again.
        while True:
            try:
                self._pubsub.ping()
                return
            except REDIS_DOWN:
                if time.monotonic() >= until:
                    return
                time.sleep(min(0.2, max(until - time.monotonic(), 0.0)))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._pubsub.close()

    def __enter__(self) -> LiveFeed:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def recent(client: redis.Redis, keys: Keys, topic: str, count: int = 20) -> list[Envelope]:
    """The last ``count`` envelopes of ``topic``'s stream, oldest first (malformed skipped)."""
    rows = cast(list[Any], client.xrevrange(keys.bus_stream(topic), count=count))
    out = []
    for _, fields in reversed(rows):
        raw = fields.get(FIELD, fields.get(FIELD.encode()))
        if raw is None:
            continue
        with contextlib.suppress(MessageError):
            out.append(Envelope.decode(raw, topic=topic))
    return out
