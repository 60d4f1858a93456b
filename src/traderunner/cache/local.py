"""The in-process tier and the thread that keeps it coherent through Redis invalidations.

redis-py's own client-side cache (``Redis(protocol=3, cache_config=...)``) does not fit: it
refuses any server that does not call itself ``redis`` >= 7.4 (Valkey 9 says ``valkey``), it
reads invalidations only when the next command is sent on the same connection, deep-copies
every hit, and its entries never expire with the key's TTL. So we track ourselves:

* one dedicated RESP3 connection per process runs ``CLIENT TRACKING ON BCAST PREFIX <latest
  candles> PREFIX <strategy configs>``: the server then pushes an ``invalidate`` message for
  every write, expiry or eviction of a key under those prefixes (and ``invalidate nil`` on
  FLUSHALL), whoever made it, whether or not we read the key;
* a daemon thread reads those pushes as they arrive and drops the named entries, PINGs every
  second so a silently dead connection is noticed, and reconnects with backoff;
* the tier is **off** (empty, no fills) whenever the tracking connection is not up, since
  invalidations could be missed then; each entry also expires with its Redis TTL.

A fill races an invalidation: a reader GETs the old value, a writer SETs a new one, the
invalidation is processed, and only then the reader stores what it read. ``begin()`` hands out
a generation number before the GET; ``fill()`` refuses the value if the key (or everything)
was invalidated since.
"""

from __future__ import annotations

import contextlib
import select
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from traderunner.cache.clients import log

MAX_ENTRIES = 10_000
#: How long an entry may live without a TTL from Redis (a key without EXPIRE).
MAX_LOCAL_TTL = 300.0
PING_EVERY = 1.0
FLUSH_EVERY = 1.0
MISSING = object()


class LocalTier:
    """Hot cache entries in this process: key -> (value, monotonic expiry)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: dict[str, tuple[Any, float]] = {}
        self._lock = threading.Lock()
        self._gen = 0
        self._flushed_at = 0
        self._touched: dict[str, int] = {}
        self.active = False

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Any:
        """The live value for ``key``, or the ``MISSING`` sentinel."""
        entry = self._entries.get(key)
        if entry is None or not self.active:
            return MISSING
        if entry[1] < time.monotonic():
            self._entries.pop(key, None)
            return MISSING
        return entry[0]

    def begin(self) -> int:
        """A token to pass to :meth:`fill` for a value about to be read from Redis."""
        return self._gen

    def fill(self, key: str, value: Any, ttl_ms: int | None, token: int) -> bool:
        """Keep ``value`` until its Redis TTL ends, unless ``key`` changed since ``token``."""
        if ttl_ms == -2:  # the key vanished between GET and PTTL
            return False
        ttl = MAX_LOCAL_TTL if ttl_ms is None or ttl_ms < 0 else min(ttl_ms / 1000, MAX_LOCAL_TTL)
        with self._lock:
            if not self.active or self._flushed_at > token or self._touched.get(key, 0) > token:
                return False
            if len(self._entries) >= self.max_entries:
                # Oldest inserted first: dicts keep insertion order.
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = (value, time.monotonic() + ttl)
            return True

    def invalidate(self, keys: Iterable[str] | None) -> None:
        """Drop ``keys`` (None: everything), and refuse fills that started before."""
        with self._lock:
            self._gen += 1
            if keys is None:
                self._flushed_at = self._gen
                self._entries.clear()
                self._touched.clear()
                return
            for key in keys:
                self._touched[key] = self._gen
                self._entries.pop(key, None)
            if len(self._touched) > 4 * self.max_entries:
                # Bounded memory: forgetting who was touched means refusing every older fill.
                self._touched.clear()
                self._flushed_at = self._gen

    def set_active(self, active: bool) -> None:
        """On (tracking just started) or off (tracking lost): either way start empty."""
        self.invalidate(None)
        with self._lock:
            self.active = active


class Maintenance(threading.Thread):
    """One daemon thread per cache: tracks invalidations (when a tier is given) and flushes.

    ``connect`` builds a new unconnected RESP3 connection; ``prefixes`` are the BCAST prefixes;
    ``every_second`` runs about once a second (the stats flush); ``on_ready`` whenever
    tracking (re)starts, i.e. the server is known to answer again.
    """

    def __init__(
        self,
        tier: LocalTier | None,
        connect: Callable[[], Any],
        prefixes: tuple[str, ...],
        every_second: Callable[[], None],
        on_ready: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(name="market-cache", daemon=True)
        self.tier = tier
        self._connect = connect
        self._prefixes = prefixes
        self._every_second = every_second
        self._on_ready = on_ready
        self._halt = threading.Event()
        self._conn: Any = None
        self._poller: select.poll | None = None
        self._reader_poller: select.poll | None = None
        self._io = threading.Lock()  # one reader of the tracking socket at a time
        self._broken = False
        self.ready = threading.Event()
        self.invalidations = 0

    def stop(self, timeout: float = 3.0) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout)
        self._drop()

    def drain_if_pending(self) -> None:
        """Apply invalidations already waiting on the socket, from the caller's thread.

        Readers call this every 0.2 ms or so: a busy reader holds the GIL, and the
        tracking thread would otherwise wait up to the interpreter's switch interval (5 ms)
        before it may apply a push. Costs one ``poll(0)`` when nothing is waiting.
        """
        if self._poller is None:
            return
        with self._io:
            # Readers share their own poll object under the lock (poll objects are not
            # thread-safe); the tracking thread polls its own outside of it.
            poller = self._reader_poller
            if self._conn is None or self._broken or poller is None or not poller.poll(0):
                return
            try:
                self._drain_locked()
            except Exception:
                # The tracking thread reconnects; until then the tier must not serve.
                self._broken = True
                if self.tier is not None:
                    self.tier.set_active(False)

    def run(self) -> None:
        backoff = 0.05
        next_tick = time.monotonic() + FLUSH_EVERY
        last_ping = time.monotonic()
        while not self._halt.is_set():
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + FLUSH_EVERY
                with contextlib.suppress(Exception):  # the flush keeps failed counts itself
                    self._every_second()
            if self.tier is None:
                self._halt.wait(max(next_tick - time.monotonic(), 0.01))
                continue
            if self._conn is None or self._broken:
                self._lost()
                if not self._start_tracking():
                    self._halt.wait(backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                backoff = 0.05
                last_ping = time.monotonic()
            poller = self._poller
            assert poller is not None
            try:
                events = poller.poll(100)  # milliseconds; the GIL is released while waiting
                with self._io:
                    if self._broken:
                        continue
                    if events:
                        self._drain_locked()
                    elif time.monotonic() - last_ping >= PING_EVERY:
                        last_ping = time.monotonic()
                        self._conn.send_command("PING")
                        self._conn.read_response()  # pushes before the PONG: the handler
            except Exception as exc:  # redis' ConnectionError, OSError, a parser error ...
                if not self._halt.is_set():
                    log.debug("market cache: tracking connection lost: %s", exc)
                self._broken = True

    def _drain_locked(self) -> None:
        conn = self._conn
        # redis-py reconnects a closed connection on can_read(): one without tracking.
        if conn is None or conn._sock is None:
            raise ConnectionError("the tracking connection is closed")
        while conn.can_read(timeout=0):
            conn.read_response(push_request=True)

    def _lost(self) -> None:
        if self.tier is not None:
            self.tier.set_active(False)
        self.ready.clear()
        with self._io:
            self._drop()
            self._broken = False

    def _start_tracking(self) -> bool:
        assert self.tier is not None
        conn = self._connect()
        try:
            conn.connect()
            # The RESP3 parser is installed by connect(); the handler must be there before
            # the first push can arrive.
            conn._parser.set_invalidation_push_handler(self._on_push)
            args: list[str] = ["CLIENT", "TRACKING", "ON", "BCAST"]
            for prefix in self._prefixes:
                args += ["PREFIX", prefix]
            conn.send_command(*args)
            conn.read_response()
        except Exception as exc:
            log.debug("market cache: cannot start tracking: %s", exc)
            with contextlib.suppress(Exception):
                conn.disconnect()
            return False
        poller, reader_poller = select.poll(), select.poll()
        poller.register(conn._sock.fileno(), select.POLLIN)
        reader_poller.register(conn._sock.fileno(), select.POLLIN)
        with self._io:
            self._conn = conn
            self._poller = poller
            self._reader_poller = reader_poller
        self.tier.set_active(True)
        self.ready.set()
        self._on_ready()
        return True

    def _on_push(self, message: list[Any]) -> list[Any]:
        # [b"invalidate", [b"key", ...]] or [b"invalidate", None] (FLUSHALL/FLUSHDB)
        assert self.tier is not None
        self.invalidations += 1
        keys = message[1] if len(message) > 1 else None
        if keys is None:
            self.tier.invalidate(None)
        else:
            self.tier.invalidate(
                k.decode("utf-8", "surrogateescape") if isinstance(k, bytes) else str(k)
                for k in keys
            )
        return message

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._poller = self._reader_poller = None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.disconnect()
