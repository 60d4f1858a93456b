"""RedisResponseCache: provider responses by key, compressed, hashed keys, failures are misses."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import redis

from tests.redishelpers import start_pair
from traderunner.cache import RedisResponseCache, read_stats
from traderunner.config import Settings
from traderunner.marketdata.providers import ResponseCache
from traderunner.redisdb.connection import connect
from traderunner.redisdb.keys import Keys


def test_round_trip_with_ttl_and_hashed_key(settings: Settings, raw: redis.Redis) -> None:
    cache = RedisResponseCache.from_settings(settings)
    try:
        assert isinstance(cache, ResponseCache)
        request = "intraday|AAPL.US|5m|1704067200|1706745600"
        body = json.dumps([{"t": i, "c": 100.0 + i} for i in range(5000)]).encode()
        assert cache.get(request) is None
        cache.put(request, body)
        assert cache.get(request) == body
        assert cache.get(request + "x") is None
        stored = raw.get(cache.key(request))
        assert stored is not None and len(stored) < len(body) / 3  # compressed
        assert 0 < raw.ttl(cache.key(request)) <= settings.cache_response_ttl
        names = [k.decode() for k in raw.scan_iter(match=f"{settings.redis_prefix}response:*")]
        assert names == [cache.key(request)] and "AAPL" not in names[0]
        small = b'{"ok": true}'
        cache.put("small", small)
        assert cache.get("small") == small
        response = read_stats(raw, Keys(settings.redis_prefix)).kinds["response"]
        assert response["hits"] == 2 and response["misses"] == 2
    finally:
        cache.close()


def test_garbage_and_a_dead_server_are_misses_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="traderunner.cache")
    pair = start_pair(tmp_path / "valkey")
    try:
        client = connect(pair.cache.url, decode=False)
        cache = RedisResponseCache(client, Keys("rsp:"), ttl=60)
        cache.put("k", b"body")
        client.set(cache.key("k"), b"\x07junk")
        assert cache.get("k") is None and cache.get("k") is None
        pair.cache.stop()
        for _ in range(3):
            assert cache.get("k") is None
            cache.put("k", b"body")  # does not raise
        messages = [r.getMessage() for r in caplog.records]
        assert sum("corrupt" in m for m in messages) == 1
        assert sum("unreachable" in m for m in messages) == 1
        cache.close()
        client.close()
    finally:
        pair.cache.stop()
        pair.durable.stop()
