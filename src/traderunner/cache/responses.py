"""RedisResponseCache: raw provider responses in the cache Redis, so a repeated fetch is free.

Implements :class:`traderunner.marketdata.providers.ResponseCache`. The provider's key (a hash
of endpoint, symbol, interval and range; never the token) is hashed again with SHA-256 into
``response:{digest}``, so key length is bounded and nothing of the request is readable in
Redis. Bodies are stored zlib-compressed (codec.py) for ``ttl`` seconds. A cache failure is a
miss for ``get`` and a no-op for ``put``, logged once per kind until it recovers.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from typing import cast

import redis

from traderunner.cache import codec
from traderunner.cache.clients import ByteClients, Problems, cache_client, error_kind
from traderunner.cache.stats import Counters
from traderunner.config import Settings
from traderunner.redisdb.keys import Keys

DOWN_BACKOFF = 0.5


class RedisResponseCache:
    """Provider responses by key, for ``ttl`` seconds (see the module docstring)."""

    def __init__(self, cache: redis.Redis, keys: Keys, ttl: int = 86400) -> None:
        self.keys = keys
        self.ttl = int(ttl)
        self._clients = ByteClients(cache)
        self._r = self._clients.redis
        self._counters = Counters()
        self._problems = Problems("provider response cache")
        self._down_until = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisResponseCache:
        """A response cache on the configured cache Redis, TTL ``cache_response_ttl``."""
        cache = cls(
            cache_client(settings, "traderunner-responses"),
            Keys(settings.redis_prefix),
            ttl=settings.cache_response_ttl,
        )
        cache._clients.owns_given = True
        return cache

    def key(self, key: str) -> str:
        """The Redis key holding the response for the provider's ``key``."""
        return self.keys.provider_response(hashlib.sha256(key.encode()).hexdigest())

    def get(self, key: str) -> bytes | None:
        """The cached body for ``key``, or None (a miss, or the cache failed)."""
        if time.monotonic() < self._down_until:
            return None
        try:
            raw = cast(bytes | None, self._r.get(self.key(key)))
        except redis.RedisError as exc:
            self._failed(exc)
            return None
        self._problems.recovered("unreachable", "error", "wrongtype")
        if raw is None:
            self._count("misses")
            return None
        try:
            body = codec.decode_response(raw)
        except codec.CorruptValueError as exc:
            self._counters.add("response", "errors")
            self._problems.failed("corrupt", str(exc))
            self._count("misses")
            return None
        self._problems.recovered("corrupt")
        self._count("hits")
        return body

    def put(self, key: str, body: bytes) -> None:
        """Keep ``body`` for ``ttl`` seconds; a failure is logged once, never raised."""
        if time.monotonic() < self._down_until:
            return
        try:
            self._r.set(self.key(key), codec.encode_response(bytes(body)), ex=self.ttl)
        except redis.RedisError as exc:
            self._failed(exc)

    def close(self) -> None:
        with contextlib.suppress(redis.RedisError):
            self._counters.flush(self._r, self.keys)
        self._clients.close()

    def _count(self, what: str) -> None:
        # Responses are rare (each one is an API call): count in Redis right away.
        self._counters.add("response", what)
        self._counters.flush(self._r, self.keys)

    def _failed(self, exc: redis.RedisError) -> None:
        what = error_kind(exc)
        if what == "unreachable":
            self._down_until = time.monotonic() + DOWN_BACKOFF
        self._counters.add("response", "errors")
        self._problems.failed(what, str(exc))
