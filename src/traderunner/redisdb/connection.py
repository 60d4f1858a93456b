"""Connections to the two Redis roles, and the safety check of the durable one.

Connections are made by entrypoints and passed down; nothing connects at import time.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from traderunner.config import Settings
from traderunner.errors import RedisError, UnsafeRedisError
from traderunner.redisdb.embedded import embedded_servers
from traderunner.redisdb.keys import Keys


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe to log and print)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


@dataclass(frozen=True, slots=True)
class RedisUrls:
    """Where the durable and the cache Redis are (URLs hold passwords: never print them raw)."""

    durable: str
    cache: str
    embedded: bool


def resolve_urls(settings: Settings) -> RedisUrls:
    """The URLs for these settings: external ones when given, else the embedded servers'."""
    if settings.redis_url:
        return RedisUrls(settings.redis_url, settings.cache_url or settings.redis_url, False)
    durable, cache = embedded_servers(settings)
    return RedisUrls(durable.url, settings.cache_url or cache.url, True)


def connect(
    url: str, *, name: str = "traderunner", decode: bool = True, **kwargs: Any
) -> redis.Redis:
    """A client for ``url`` with sane timeouts and a short retry on connection errors.

    Raises RedisError (URL masked) when the URL is malformed. Connecting is lazy: the first
    command raises redis' own ConnectionError if the server is down; use :func:`ping` to check.
    """
    try:
        return redis.Redis.from_url(
            url,
            decode_responses=decode,
            client_name=name,
            socket_timeout=kwargs.pop("socket_timeout", 10.0),
            socket_connect_timeout=kwargs.pop("socket_connect_timeout", 3.0),
            health_check_interval=kwargs.pop("health_check_interval", 15),
            retry=kwargs.pop("retry", Retry(ExponentialBackoff(cap=1.0, base=0.05), 3)),
            **kwargs,
        )
    except ValueError as exc:
        raise RedisError(f"invalid Redis URL {mask_url(url)}: {exc}") from None


def bytes_client(client: redis.Redis) -> tuple[redis.Redis, bool]:
    """A client for the same server that returns raw bytes; True when it was made here.

    The cache stores binary values and the bus must read entries that are not UTF-8, so a
    ``decode_responses=True`` client (what ``open_clients`` builds) gets a byte-returning
    sibling with its own pool (the caller closes it when True).
    """
    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    if not kwargs.get("decode_responses"):
        return client, False
    kwargs["decode_responses"] = False
    sibling = redis.ConnectionPool(
        connection_class=pool.connection_class, max_connections=pool.max_connections, **kwargs
    )
    return redis.Redis(connection_pool=sibling), True


def ping(client: redis.Redis, url: str) -> None:
    """Raise RedisError saying what to check when the server does not answer."""
    try:
        client.ping()
    except redis.AuthenticationError:
        raise RedisError(
            f"Redis at {mask_url(url)} refused the password: check the URL's password"
        ) from None
    except redis.ResponseError as exc:
        if "NOAUTH" in str(exc):
            raise RedisError(
                f"Redis at {mask_url(url)} needs a password: put it in the URL "
                "(redis://:PASSWORD@host:port/0)"
            ) from None
        raise RedisError(f"Redis at {mask_url(url)} answered an error: {exc}") from None
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        raise RedisError(
            f"cannot reach Redis at {mask_url(url)} ({exc}); start it (traderunner redis start) "
            "or fix TRADERUNNER_REDIS_URL"
        ) from None


def check_durable(client: redis.Redis, url: str, *, allow_unsafe: bool = False) -> list[str]:
    """Refuse a durable Redis that could evict or lose queued work.

    Checks ``maxmemory-policy`` (must be ``noeviction``: ``allkeys-*`` evicts queued jobs and
    ``volatile-*`` evicts job state, which carries TTLs) and persistence (AOF or RDB snapshots
    must be on). Returns the problems found; raises UnsafeRedisError listing them, with what to
    set, unless ``allow_unsafe`` (``TRADERUNNER_ALLOW_UNSAFE_REDIS=1``).
    """
    ping(client, url)
    problems: list[str] = []

    def config(name: str, default: str) -> str:
        found = cast(dict[str, Any], client.config_get(name))
        return str(found.get(name, default))

    try:
        policy = config("maxmemory-policy", "")
        aof = config("appendonly", "no")
        save = config("save", "")
    except redis.ResponseError:
        # CONFIG may be renamed/disabled on managed servers; INFO is always there.
        info = cast(dict[str, Any], client.info())
        policy = str(info.get("maxmemory_policy", ""))
        aof = "yes" if int(info.get("aof_enabled", 0)) else "no"
        save = "" if int(info.get("rdb_saves", 0)) == 0 and aof == "no" else "unknown"
    if policy != "noeviction":
        problems.append(
            f"maxmemory-policy is {policy!r} (set 'maxmemory-policy noeviction': an eviction "
            "policy can drop queued jobs or their state)"
        )
    if aof != "yes" and not save.strip():
        problems.append(
            "persistence is off (set 'appendonly yes' and 'appendfsync everysec': a restart "
            "would lose every queued job)"
        )
    if problems and not allow_unsafe:
        raise UnsafeRedisError(
            f"refusing the durable Redis at {mask_url(url)}: {'; '.join(problems)}; or accept "
            "the risk with TRADERUNNER_ALLOW_UNSAFE_REDIS=1"
        )
    return problems


@dataclass(slots=True)
class RedisClients:
    """The two clients an entrypoint builds once and passes down."""

    durable: redis.Redis
    cache: redis.Redis
    urls: RedisUrls
    keys: Keys

    def close(self) -> None:
        for client in (self.durable, self.cache):
            with contextlib.suppress(Exception):
                client.close()


def open_clients(
    settings: Settings, *, check: bool = True, name: str = "traderunner"
) -> RedisClients:
    """Connect to both roles; with ``check`` verify the durable one (see check_durable)."""
    urls = resolve_urls(settings)
    durable = connect(urls.durable, name=name)
    cache = durable if urls.cache == urls.durable else connect(urls.cache, name=name)
    if check:
        check_durable(durable, urls.durable, allow_unsafe=settings.allow_unsafe_redis)
    return RedisClients(durable, cache, urls, Keys(settings.redis_prefix))
