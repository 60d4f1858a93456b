"""Redis plumbing shared by the cache classes: byte clients, error kinds, log-once problems."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from traderunner.config import Settings
from traderunner.redisdb.connection import bytes_client, connect, resolve_urls

log = logging.getLogger("traderunner.cache")

#: The cache server is down or unreachable (refused, reset, timed out, loading, bad password).
UNREACHABLE: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError, OSError)


class ByteClients:
    """The client a cache was given and the byte-returning one it uses, and who closes which.

    ``redis`` is ``given`` itself, or a sibling made by :func:`bytes_client` (always closed
    here). ``given`` is closed only when ``owns_given`` (the cache opened it, in
    ``from_settings``). Closing never raises.
    """

    def __init__(self, given: redis.Redis, *, owns_given: bool = False) -> None:
        self.given = given
        self.redis, self._owns_sibling = bytes_client(given)
        self.owns_given = owns_given

    def close(self) -> None:
        if self._owns_sibling:
            with contextlib.suppress(Exception):
                self.redis.close()
        if self.owns_given:
            with contextlib.suppress(Exception):
                self.given.close()


def tracking_connection(client: redis.Redis, name: str) -> Any:
    """A new, unconnected RESP3 connection to ``client``'s server (for CLIENT TRACKING)."""
    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    kwargs.update(
        protocol=3,
        decode_responses=False,
        health_check_interval=0,
        retry=Retry(NoBackoff(), 0),
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        socket_keepalive=True,
        client_name=name,
    )
    return pool.connection_class(**kwargs)


def cache_client(settings: Settings, name: str = "traderunner-cache") -> redis.Redis:
    """A byte client for the configured cache Redis (lazy: nothing connects yet).

    One quick retry (a pooled socket may be stale after a server restart), no backoff: a
    cache that is down must cost a read almost nothing before it falls back to the store.
    """
    return connect(
        resolve_urls(settings).cache,
        name=name,
        decode=False,
        socket_timeout=5.0,
        socket_connect_timeout=1.0,
        retry=Retry(NoBackoff(), 1),
    )


class Problems:
    """Logs a cache failure once per kind, and once more when that kind is over.

    The server being unreachable is over at the next command that works. A bad value
    (``corrupt``, ``wrongtype``) is an event per key, not a state: that kind is over only
    after ``quiet`` seconds without another one, so a burst of bad keys logs one line.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.quiet = {"corrupt": 60.0, "wrongtype": 60.0}
        self._failing: dict[str, float] = {}
        self._lock = threading.Lock()

    def failed(self, kind: str, detail: str) -> None:
        with self._lock:
            known = kind in self._failing
            self._failing[kind] = time.monotonic()
        if not known:
            log.warning(
                "%s: %s (%s); reading from the store until it recovers", self.what, kind, detail
            )

    def recovered(self, *kinds: str) -> None:
        if not self._failing:
            return
        now = time.monotonic()
        for kind in kinds:
            with self._lock:
                since = self._failing.get(kind)
                if since is None or now - since < self.quiet.get(kind, 0.0):
                    continue
                del self._failing[kind]
            log.warning("%s: %s is over, the cache serves again", self.what, kind)

    @property
    def failing(self) -> frozenset[str]:
        return frozenset(self._failing)


def error_kind(exc: BaseException) -> str:
    """``unreachable``, ``wrongtype`` or ``error`` for a redis-py exception."""
    if isinstance(exc, UNREACHABLE):
        return "unreachable"
    if isinstance(exc, redis.ResponseError) and "WRONGTYPE" in str(exc):
        return "wrongtype"
    return "error"
