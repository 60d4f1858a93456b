"""What the System page shows, read from the servers as they are now (nothing is cached).

Each reader takes the connections it needs and returns frozen values; a server that is down
becomes a value that says so (``reachable=False`` and its error), never an exception, so one
dead part never blanks the page.

* :func:`redis_status`: one ``INFO`` round trip per server: version, uptime, memory against
  ``maxmemory``, eviction policy, ops/s, clients, evicted keys, keyspace hit rate, and
  persistence (AOF on and its last write, the last RDB save and changes since).
* :func:`queue_depths`: messages waiting per queue (all priority steps together).
* :func:`workers`: Celery's remote-control ``stats`` broadcast (it waits its whole timeout,
  since the number of workers is not known), then ``active`` and ``active_queues`` of the
  workers that answered (these return as soon as all have); the page loads them apart from
  the rest, so the broadcast never holds the page.
* :func:`cache_figures`: the cache counters summed over every process (``cache/stats.py``).
* :func:`login_activity`: login attempts of the last window by outcome, from the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import redis

from traderunner.errors import TraderunnerError

# Imported at the top, not lazily: the worker watch thread and a request thread importing the
# jobs package at the same moment can find it half-initialised. (Importing traderunner.jobs
# runs jobs/__init__, which imports jobs.client; neither loads the engine or numba today.)
from traderunner.jobs.app import make_celery
from traderunner.jobs.queueing import queue_lengths
from traderunner.redisdb.connection import mask_url

if TYPE_CHECKING:
    from traderunner.cache.stats import CacheStats
    from traderunner.config import Settings
    from traderunner.redisdb.keys import Keys
    from traderunner.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RedisStatus:
    """One Redis server's figures (``reachable=False``: only ``role``, ``url``, ``error``)."""

    role: str
    url: str
    reachable: bool
    error: str = ""
    version: str = ""
    uptime_s: int = 0
    used_memory: int = 0
    used_memory_human: str = ""
    maxmemory: int = 0
    policy: str = ""
    ops_per_sec: int = 0
    clients: int = 0
    evicted_keys: int = 0
    keyspace_hits: int = 0
    keyspace_misses: int = 0
    keys: int = 0
    aof_enabled: bool = False
    aof_last_write: str = ""
    rdb_last_save: datetime | None = None
    rdb_last_status: str = ""
    rdb_changes: int = 0

    @property
    def persistence(self) -> str:
        """``AOF`` (+ last write status), ``RDB`` snapshots only, or ``off``."""
        if self.aof_enabled:
            return f"AOF ({self.aof_last_write or 'unknown'})"
        if self.rdb_last_save is not None and self.role == "durable":
            return f"RDB only ({self.rdb_last_status or 'unknown'})"
        return "off"

    @property
    def hit_ratio(self) -> float | None:
        reads = self.keyspace_hits + self.keyspace_misses
        return None if reads == 0 else self.keyspace_hits / reads

    @property
    def problems(self) -> tuple[str, ...]:
        """What is wrong for this server's role (the durable one must not evict or forget)."""
        if not self.reachable:
            return (self.error or "not reachable",)
        found: list[str] = []
        if self.role == "durable":
            if self.policy != "noeviction":
                found.append(f"eviction policy {self.policy!r}: queued work could be evicted")
            if not self.aof_enabled:
                found.append("AOF is off: a restart could lose queued work")
            elif self.aof_last_write not in ("", "ok"):
                found.append(f"the last AOF write failed ({self.aof_last_write})")
        if self.evicted_keys and self.role == "durable":
            found.append(f"{self.evicted_keys} keys were evicted")
        return tuple(found)


def redis_status(client: redis.Redis, *, role: str, url: str) -> RedisStatus:
    """The figures of one server, or ``reachable=False`` with the reason."""
    masked = mask_url(url)
    try:
        info = cast(dict[str, Any], client.info())
    except (redis.RedisError, OSError) as exc:
        return RedisStatus(role=role, url=masked, reachable=False, error=_one_line(exc))
    keys = sum(int(v.get("keys", 0)) for k, v in info.items() if k.startswith("db"))
    last_save = info.get("rdb_last_save_time")
    return RedisStatus(
        role=role,
        url=masked,
        reachable=True,
        version=str(info.get("valkey_version") or info.get("redis_version") or ""),
        uptime_s=int(info.get("uptime_in_seconds", 0)),
        used_memory=int(info.get("used_memory", 0)),
        used_memory_human=str(info.get("used_memory_human", "")),
        maxmemory=int(info.get("maxmemory", 0)),
        policy=str(info.get("maxmemory_policy", "")),
        ops_per_sec=int(info.get("instantaneous_ops_per_sec", 0)),
        clients=int(info.get("connected_clients", 0)),
        evicted_keys=int(info.get("evicted_keys", 0)),
        keyspace_hits=int(info.get("keyspace_hits", 0)),
        keyspace_misses=int(info.get("keyspace_misses", 0)),
        keys=keys,
        aof_enabled=bool(int(info.get("aof_enabled", 0))),
        aof_last_write=str(info.get("aof_last_write_status", "")),
        rdb_last_save=(
            datetime.fromtimestamp(int(last_save), tz=UTC) if last_save is not None else None
        ),
        rdb_last_status=str(info.get("rdb_last_bgsave_status", "")),
        rdb_changes=int(info.get("rdb_changes_since_last_save", 0)),
    )


@dataclass(frozen=True, slots=True)
class QueueDepths:
    """Messages waiting per queue (``error`` set when the broker could not be read)."""

    depths: Mapping[str, int] = field(default_factory=dict)
    error: str = ""

    @property
    def total(self) -> int:
        return sum(self.depths.values())


def queue_depths(durable: redis.Redis, keys: Keys) -> QueueDepths:
    try:
        return QueueDepths(dict(queue_lengths(durable, keys)))
    except (redis.RedisError, OSError) as exc:
        return QueueDepths(error=_one_line(exc))


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """One Celery worker that answered the broadcast."""

    name: str
    concurrency: int
    pool: str
    pid: int
    running: int
    processed: int
    uptime_s: int
    queues: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Workers:
    workers: tuple[WorkerStatus, ...] = ()
    error: str = ""
    timeout_s: float = 0.0
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


def celery_app(settings: Settings) -> Any:
    """A Celery app that only broadcasts (for ``workers``); build it once per process."""
    return make_celery(settings)


def workers(app: Any, *, timeout: float = 0.6) -> Workers:
    """The workers whose ``stats`` reply comes within ``timeout`` s, with their running jobs.

    How many workers exist is not known beforehand, so the first broadcast (``stats``, which
    is also the slowest to answer) waits its whole timeout; the two after it name the workers
    that answered and return as soon as each has.
    """
    try:
        stats = app.control.inspect(timeout=timeout).stats() or {}
        names = sorted(stats)
        if not names:
            return Workers(timeout_s=timeout)
        inspect = app.control.inspect(destination=names, timeout=timeout, limit=len(names))
        active = inspect.active() or {}
        queues = inspect.active_queues() or {}
    except Exception as exc:  # kombu/redis errors of every kind: the page shows the reason
        log.warning("celery inspect failed: %s", exc)
        return Workers(error=_one_line(exc), timeout_s=timeout)
    found = []
    for name in names:
        st = stats.get(name, {})
        pool = st.get("pool", {}) or {}
        total = st.get("total", {}) or {}
        found.append(
            WorkerStatus(
                name=name,
                concurrency=int(pool.get("max-concurrency", 0) or 0),
                # "celery.concurrency.prefork:TaskPool" -> "prefork"
                pool=str(pool.get("implementation", "")).split(":")[0].rsplit(".", 1)[-1],
                pid=int(st.get("pid", 0) or 0),
                running=len(active.get(name, []) or []),
                processed=sum(int(n) for n in total.values()),
                uptime_s=int(st.get("uptime", 0) or 0),
                queues=tuple(sorted(q.get("name", "") for q in queues.get(name, []) or [])),
            )
        )
    return Workers(tuple(found), timeout_s=timeout)


class WorkerWatch:
    """The latest :func:`workers` reading, refreshed in a background thread while the System
    page is looked at.

    One broadcast every ``every`` seconds however many pages are open (a broadcast reaches
    every worker), and none once nobody has asked for ``idle_stop`` seconds. The first
    :meth:`latest` starts the thread and waits for its first reading.
    """

    def __init__(
        self,
        app: Callable[[], Any],
        *,
        timeout: float = 0.6,
        every: float = 5.0,
        idle_stop: float = 60.0,
    ) -> None:
        self._app = app
        self.timeout = timeout
        self.every = every
        self.idle_stop = idle_stop
        self._lock = threading.Lock()
        self._fresh = threading.Condition(self._lock)
        self._reading: Workers | None = None
        self._asked = 0.0
        self._thread: threading.Thread | None = None
        self._closed = False

    def latest(self, wait: float = 5.0) -> Workers | None:
        """The newest reading (waiting up to ``wait`` s for a first one); None if none yet."""
        with self._lock:
            self._asked = time.monotonic()
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._run, name="traderunner-worker-watch", daemon=True
                )
                self._thread.start()
            if self._reading is None:
                self._fresh.wait_for(lambda: self._reading is not None, timeout=wait)
            return self._reading

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._fresh.notify_all()

    def _run(self) -> None:
        while True:
            reading = workers(self._app(), timeout=self.timeout)
            with self._lock:
                self._reading = reading
                self._fresh.notify_all()
                idle = time.monotonic() - self._asked > self.idle_stop
                if self._closed or idle:
                    self._thread = None  # the next latest() starts a new one
                    return
                self._fresh.wait(timeout=self.every)
                if self._closed:
                    self._thread = None
                    return


@dataclass(frozen=True, slots=True)
class CacheFigures:
    stats: CacheStats | None
    error: str = ""


def cache_figures(cache: redis.Redis, keys: Keys, url: str) -> CacheFigures:
    from traderunner.cache.stats import read_stats

    try:
        return CacheFigures(read_stats(cache, keys, url=url))
    except TraderunnerError as exc:
        return CacheFigures(None, _one_line(exc))


@dataclass(frozen=True, slots=True)
class LoginActivity:
    """Login attempts in the last ``window_s`` seconds by outcome."""

    window_s: int
    counts: Mapping[str, int]
    error: str = ""

    @property
    def failed(self) -> int:
        return sum(n for outcome, n in self.counts.items() if outcome != "ok")


def login_activity(store: Store, window_s: int) -> LoginActivity:
    since = datetime.now(UTC) - timedelta(seconds=window_s)
    try:
        return LoginActivity(window_s, store.users.login_counts(since))
    except TraderunnerError as exc:
        return LoginActivity(window_s, {}, _one_line(exc))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
