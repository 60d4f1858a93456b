"""Fixtures for the bus tests: the session's real durable Valkey, a fresh key prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from tests.integration.bus.helpers import FAST, Recorder
from tests.redishelpers import RedisPair
from traderunner.bus import Consumer, Publisher
from traderunner.redisdb.connection import connect
from traderunner.redisdb.keys import Keys


@pytest.fixture
def client(redis_pair: RedisPair) -> Iterator[redis.Redis]:
    """A decoding client of the durable server (what ``open_clients`` hands out)."""
    made = connect(redis_pair.durable.url)
    yield made
    made.close()


@pytest.fixture
def keys() -> Keys:
    return Keys(f"t{uuid.uuid4().hex[:8]}:")


@pytest.fixture
def publisher(client: redis.Redis, keys: Keys) -> Publisher:
    return Publisher(client, keys, FAST)


@pytest.fixture
def make_consumer(
    client: redis.Redis, keys: Keys
) -> Iterator[Callable[..., tuple[Consumer, Recorder]]]:
    """Build consumers (closed at the end): ``make_consumer(topics=..., name=..., **kwargs)``."""
    made: list[Consumer] = []

    def build(**kwargs: Any) -> tuple[Consumer, Recorder]:
        recorder = kwargs.pop("recorder", None) or Recorder()
        values: dict[str, Any] = {
            "group": "trader",
            "name": "c1",
            "topics": ["signals"],
            "accept": {"signal": {1}},
            "options": FAST,
            "start": "0",
        }
        values.update(kwargs)
        consumer = Consumer(client, keys, handler=recorder, **values)
        made.append(consumer)
        return consumer, recorder

    yield build
    for consumer in made:
        consumer.stop()
        consumer.close()
