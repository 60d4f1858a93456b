"""Stampede protection: one loader per missing key, in the process and in the cluster.

In the process, the first thread to miss a key becomes its leader and the others wait on its
future. Across processes, the leaders race for a fill lock (``SET NX PX`` in one Lua script
that first checks whether the value appeared): the winner loads the value from the store,
writes it and releases the lock; the others poll (1 ms doubling to 50 ms) until the value is
there. A lock whose holder died expires and the next poller takes it over; a long load (a big
series) refreshes its lock while it runs. A waiter past its deadline reads the store itself,
and any Redis failure sends the caller to the store at once.

The same guard also serialises work that is not a cache value: :class:`SeriesLock` holds one
token-guarded lock per name across processes and machines (a fetch-then-backtest job's per-series
fetch: one job asks the provider, the others wait and then find the data stored). The holder
refreshes it while it works; a dead holder's lock expires and the next waiter takes it.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import redis

from traderunner.cache import codec
from traderunner.cache.clients import error_kind
from traderunner.redisdb.keys import CACHE_FILL_LOCK_TTL, LATEST_FILL_LOCK_TTL, Keys
from traderunner.redisdb.scripts import FILL_OR_LOCK, PEXPIRE_IF_HELD, RELEASE_IF_HELD

T = TypeVar("T")
Loaded = tuple[Any, bytes | None, int]  # value, its cached bytes (None: cache nothing), TTL s


@dataclass(frozen=True, slots=True)
class FillPolicy:
    """How one kind of key is filled: fill-lock TTL, longest wait, refresh while loading."""

    lock_ms: int
    wait_s: float
    refresh: bool


LATEST_FILL = FillPolicy(LATEST_FILL_LOCK_TTL * 1000, 3.0, refresh=False)
SERIES_FILL = FillPolicy(CACHE_FILL_LOCK_TTL * 1000, 600.0, refresh=True)


class Filler:
    """Fills missing keys, one loader at a time (see the module docstring).

    ``from_store(kind, load)`` runs a load and counts it (a load whose bytes are None is
    returned but not cached: the next waiter then loads it itself); ``write(kind, key, raw,
    ttl)`` caches a value (never raises); ``failed(kind, what, detail)`` records a Redis
    failure.
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        from_store: Callable[[str, Callable[[], Loaded]], Loaded],
        write: Callable[[str, str, bytes, int], None],
        failed: Callable[[str, str, str], None],
    ) -> None:
        self._r = client
        self._keys = keys
        self._from_store = from_store
        self._write = write
        self._failed = failed
        self._flights: dict[str, Future[Any]] = {}
        self._lock = threading.Lock()
        self._fill = client.register_script(FILL_OR_LOCK)
        self._release = client.register_script(RELEASE_IF_HELD)
        self._refresh = client.register_script(PEXPIRE_IF_HELD)

    def fill(
        self,
        kind: str,
        key: str,
        decode: Callable[[bytes], T],
        load: Callable[[], Loaded],
        policy: FillPolicy,
        bad: bool,
    ) -> T:
        """The value of ``key``: loaded here once, or by whoever is already loading it.

        ``bad``: the value now in Redis is unusable (corrupt, wrong type) and must be replaced.
        """
        with self._lock:
            future = self._flights.get(key)
            leader = future is None
            if future is None:
                future = self._flights[key] = Future()
        if not leader:
            try:
                return cast(T, future.result(timeout=policy.wait_s))
            except FutureTimeout:
                return cast(T, self._from_store(kind, load)[0])
        try:
            value = self._fill_cluster(kind, key, decode, load, policy, bad)
        except BaseException as exc:
            future.set_exception(exc)
            raise
        else:
            future.set_result(value)
            return value
        finally:
            with self._lock:
                self._flights.pop(key, None)

    def _fill_cluster(
        self,
        kind: str,
        key: str,
        decode: Callable[[bytes], T],
        load: Callable[[], Loaded],
        policy: FillPolicy,
        bad: bool,
    ) -> T:
        lock_key = self._keys.cache_fill_lock(key)
        token = secrets.token_hex(8)
        deadline = time.monotonic() + policy.wait_s
        delay = 0.001
        while True:
            try:
                state = int(
                    self._fill(keys=[key, lock_key], args=[token, policy.lock_ms, int(bad)])
                )
                raw = cast(bytes | None, self._r.get(key)) if state == 1 else None
            except redis.RedisError as exc:
                self._failed(kind, error_kind(exc), str(exc))
                return cast(T, self._from_store(kind, load)[0])
            if state == 1:
                if raw is None:
                    continue  # expired or evicted between EXISTS and GET
                try:
                    return decode(raw)
                except codec.CorruptValueError:
                    bad = True
                    continue
            if state == 2:
                with self._holding(lock_key, token, policy):
                    value, encoded, ttl = self._from_store(kind, load)
                    if encoded is not None:
                        self._write(kind, key, encoded, ttl)
                return cast(T, value)
            # Another process is loading it. Its value replaces any bad one we saw.
            bad = False
            if time.monotonic() >= deadline:
                return cast(T, self._from_store(kind, load)[0])
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    @contextmanager
    def _holding(self, lock_key: str, token: str, policy: FillPolicy) -> Iterator[None]:
        done = threading.Event()
        keeper: threading.Thread | None = None
        if policy.refresh:
            # A long load keeps its lock alive; if this process dies, the lock expires soon
            # and a waiter takes over.
            def keep() -> None:
                while not done.wait(policy.lock_ms / 3000):
                    with contextlib.suppress(redis.RedisError):
                        self._refresh(keys=[lock_key], args=[token, policy.lock_ms])

            keeper = threading.Thread(target=keep, name="market-cache-fill", daemon=True)
            keeper.start()
        try:
            yield
        finally:
            done.set()
            if keeper is not None:
                keeper.join(1.0)
            with contextlib.suppress(redis.RedisError):
                self._release(keys=[lock_key], args=[token])


class SeriesLock:
    """One holder at a time per key, across processes and machines (see the module docstring).

    ``hold(key)`` waits (polling 5 ms doubling to 200 ms) until it holds ``key``, refreshes it
    every third of ``ttl_ms`` while the block runs, and releases it after. Within one process,
    threads holding the same key also queue on a local lock first, so they do not poll Redis.
    ``waited`` counts the holds that had to wait for another holder.
    """

    def __init__(self, client: redis.Redis, ttl_ms: int) -> None:
        self._r = client
        self._ttl_ms = int(ttl_ms)
        self._release = client.register_script(RELEASE_IF_HELD)
        self._refresh = client.register_script(PEXPIRE_IF_HELD)
        self._local: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.waited = 0

    @contextmanager
    def hold(self, key: str) -> Iterator[bool]:
        """Hold ``key`` for the block; yields True when another holder was waited for."""
        with self._guard:
            local = self._local.setdefault(key, threading.Lock())
        with local:
            token = secrets.token_hex(8)
            delay, waited = 0.005, False
            while not self._r.set(key, token, nx=True, px=self._ttl_ms):
                waited = True
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
            if waited:
                self.waited += 1
            policy = FillPolicy(self._ttl_ms, 0.0, refresh=True)
            with self._holding(key, token, policy):
                yield waited

    @contextmanager
    def _holding(self, key: str, token: str, policy: FillPolicy) -> Iterator[None]:
        done = threading.Event()

        def keep() -> None:
            while not done.wait(policy.lock_ms / 3000):
                with contextlib.suppress(redis.RedisError):
                    self._refresh(keys=[key], args=[token, policy.lock_ms])

        keeper = threading.Thread(target=keep, name="series-lock", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            done.set()
            keeper.join(1.0)
            with contextlib.suppress(redis.RedisError):
                self._release(keys=[key], args=[token])
