"""Cache counters: counted in process, summed over every process in one Redis hash.

A hit in the in-process tier costs well under a microsecond, so counting it must not cost a
round trip: each process counts in memory and adds its counts to ``cache_stats`` (HINCRBY)
about once a second, from its maintenance thread and on close. Fields are ``{kind}:{what}``,
kinds ``latest``, ``series``, ``config`` and ``response``; what ``hits`` (Redis), ``local_hits``
(in process), ``misses``, ``errors`` (a failure that fell back to the store), ``store_loads``
(reads of the store the cache made, one per filled miss plus any fallback), and for series
``extends`` (a cached series that lacked the bars appended since, read from the store: a small
query, not a load) and ``bytes_read`` (bytes of series values read from Redis).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import redis

from traderunner.cache.clients import UNREACHABLE
from traderunner.errors import RedisError
from traderunner.redisdb.connection import mask_url
from traderunner.redisdb.keys import CACHE_STATS_TTL, Keys

KINDS = ("latest", "series", "config", "response")
WHATS = ("hits", "local_hits", "misses", "errors", "store_loads", "extends", "bytes_read")


@dataclass(frozen=True, slots=True)
class CacheStats:
    """What ``traderunner cache stats`` shows; counts are summed over every process.

    ``memory_used``/``maxmemory`` are bytes from ``INFO memory`` (maxmemory 0 = unbounded);
    ``keys`` counts the keys under this deployment's prefix; ``kinds`` breaks the counts down
    by kind (latest, series, config, response). ``local_entries``/``local_active`` describe
    the calling process's in-process tier (0/False when read without one).
    """

    hits: int
    misses: int
    errors: int
    local_hits: int
    store_loads: int
    keys: int
    memory_used: int
    memory_human: str
    maxmemory: int
    policy: str
    evicted_keys: int
    kinds: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    local_entries: int = 0
    local_active: bool = False

    @property
    def hit_ratio(self) -> float | None:
        """(hits + local hits) / all reads, None before the first read."""
        reads = self.hits + self.local_hits + self.misses
        return None if reads == 0 else (self.hits + self.local_hits) / reads

    def to_dict(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "local_hits": self.local_hits,
            "misses": self.misses,
            "errors": self.errors,
            "store_loads": self.store_loads,
            "hit_ratio": self.hit_ratio,
            "keys": self.keys,
            "memory_used": self.memory_used,
            "memory_human": self.memory_human,
            "maxmemory": self.maxmemory,
            "policy": self.policy,
            "evicted_keys": self.evicted_keys,
            "kinds": {k: dict(v) for k, v in self.kinds.items()},
            "local_entries": self.local_entries,
            "local_active": self.local_active,
        }


class Counters:
    """This process's counts, exact and lock-free on the hot path.

    Each thread counts in its own dict (only its owner writes it, so ``+=`` cannot lose an
    update) and the dicts only grow; a flush sums them and sends the growth since the last
    successful flush, so a failed flush is simply retried by the next one.
    """

    def __init__(self) -> None:
        self._mine = threading.local()
        self._threads: list[dict[str, dict[str, int]]] = []
        self._register_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._sent: Counter[str] = Counter()

    def add(self, kind: str, what: str, n: int = 1) -> None:
        try:
            counts: dict[str, dict[str, int]] = self._mine.counts
        except AttributeError:
            counts = self._register()
        by_what = counts.get(kind)
        if by_what is None:
            by_what = counts[kind] = {}
        by_what[what] = by_what.get(what, 0) + n

    def _register(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        self._mine.counts = counts
        with self._register_lock:
            self._threads.append(counts)
        return counts

    def totals(self) -> Counter[str]:
        """Everything counted in this process so far, as ``{kind}:{what}`` names."""
        with self._register_lock:
            threads = list(self._threads)
        out: Counter[str] = Counter()
        for counts in threads:
            for kind, by_what in list(counts.items()):
                for what, n in dict(by_what).items():  # dict(): a C-level, GIL-held copy
                    out[f"{kind}:{what}"] += n
        return out

    def flush(self, client: redis.Redis, keys: Keys) -> bool:
        """Add what was counted since the last flush to the shared hash; False if that failed."""
        with self._flush_lock:
            totals = self.totals()
            delta = {name: n - self._sent[name] for name, n in totals.items()}
            delta = {name: n for name, n in delta.items() if n}
            if not delta:
                return True
            key = keys.cache_stats()
            try:
                pipe = client.pipeline(transaction=False)
                for name, n in delta.items():
                    pipe.hincrby(key, name, n)
                pipe.expire(key, CACHE_STATS_TTL)
                pipe.execute()
            except redis.RedisError:
                return False
            self._sent.update(delta)
            return True


def read_stats(
    client: redis.Redis, keys: Keys, *, url: str = "", scan_count: int = 1000
) -> CacheStats:
    """The shared counters and the server's memory figures; RedisError if it is down."""
    try:
        raw = cast(dict[Any, Any], client.hgetall(keys.cache_stats()))
        info = cast(dict[str, Any], client.info("memory"))
        evicted = int(cast(dict[str, Any], client.info("stats")).get("evicted_keys", 0))
        count = 0
        for _ in client.scan_iter(match=keys.everything(), count=scan_count):
            count += 1
    except UNREACHABLE as exc:
        where = f" at {mask_url(url)}" if url else ""
        raise RedisError(
            f"the cache Redis{where} is not reachable ({exc}); start it with "
            "'traderunner redis start' or fix TRADERUNNER_CACHE_URL"
        ) from None
    except redis.RedisError as exc:
        raise RedisError(f"the cache Redis answered an error: {exc}") from None
    counts = {_text(k): int(v) for k, v in raw.items()}
    kinds: dict[str, dict[str, int]] = {}
    for name, n in counts.items():
        kind, _, what = name.partition(":")
        kinds.setdefault(kind, dict.fromkeys(WHATS, 0))[what] = n

    def total(what: str) -> int:
        return sum(k.get(what, 0) for k in kinds.values())

    return CacheStats(
        hits=total("hits"),
        misses=total("misses"),
        errors=total("errors"),
        local_hits=total("local_hits"),
        store_loads=total("store_loads"),
        keys=count,
        memory_used=int(info.get("used_memory", 0)),
        memory_human=str(info.get("used_memory_human", "")),
        maxmemory=int(info.get("maxmemory", 0)),
        policy=str(info.get("maxmemory_policy", "")),
        evicted_keys=evicted,
        kinds=kinds,
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
