"""The session hashes in a real Valkey: sliding TTL, maximum age, ending one or all."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from tests.redishelpers import RedisPair
from traderunner.dashboard.sessions import SessionStore
from traderunner.redisdb.connection import connect
from traderunner.redisdb.keys import Keys


@pytest.fixture
def store(redis_pair: RedisPair) -> Iterator[SessionStore]:
    client = connect(redis_pair.durable.url)
    yield SessionStore(client, Keys(f"s{uuid.uuid4().hex[:8]}:"), ttl=60, max_age=2)
    client.close()


def test_a_session_is_a_hash_with_a_sliding_ttl(store: SessionStore) -> None:
    info = store.create("ana", admin=False, address="127.0.0.1")
    key = store.keys.session(info.id)
    assert store.redis.hgetall(key) == {
        "user": "ana",
        "admin": "0",
        "created": info.created.isoformat(),
        "last_seen": info.created.isoformat(),
        "address": "127.0.0.1",
        "csrf": info.csrf,
    }
    store.redis.expire(key, 5)
    resumed = store.resume(info.id)
    assert resumed is not None and resumed.user == "ana" and resumed.csrf == info.csrf
    assert 55 <= store.redis.ttl(key) <= 60


def test_an_ended_session_is_never_brought_back(store: SessionStore) -> None:
    info = store.create("ana", admin=True)
    store.end(info.id)
    assert store.resume(info.id) is None
    assert not store.redis.exists(store.keys.session(info.id))  # the touch created nothing
    assert info.id not in store.redis.smembers(store.keys.user_sessions("ana"))


def test_a_session_ends_at_its_maximum_age_however_active(store: SessionStore) -> None:
    info = store.create("ana", admin=False)
    assert store.resume(info.id) is not None
    time.sleep(3.1)  # max_age is 2 s (created is kept to the second)
    assert store.resume(info.id) is None
    assert not store.redis.exists(store.keys.session(info.id))


def test_end_user_ends_every_session_of_that_user_only(store: SessionStore) -> None:
    mine = [store.create("bo", admin=False) for _ in range(3)]
    other = store.create("ana", admin=False)
    store.redis.delete(store.keys.session(mine[0].id))  # one expired on its own
    assert [s.id for s in store.sessions_of("bo")] == sorted(s.id for s in mine[1:])
    assert store.end_user("bo") == 2
    assert all(store.resume(s.id) is None for s in mine)
    assert store.resume(other.id) is not None
    assert store.end_user("bo") == 0
