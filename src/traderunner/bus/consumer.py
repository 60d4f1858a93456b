"""Consuming: one member of a consumer group, reading one or more topics.

The loop (:meth:`Consumer.run`, or one step at a time with :meth:`Consumer.poll`):

1. **Prepare** (at start and after every reconnect): create the group on each stream if it
   is missing (``XGROUP CREATE ... MKSTREAM``), send the acknowledgements a Redis outage held
   back, and take back this consumer's own pending entries (a restart under the same name
   resumes at once, without waiting for ``claim_idle``).
2. **Claim** (every ``claim_idle / 4``, at most 5 s): ``XAUTOCLAIM`` entries that other
   consumers of the group left unacknowledged for ``claim_idle`` (they died), and handle them.
3. **Read** new entries (``XREADGROUP ... BLOCK``), decode each, call the handler, and
   ``XACK`` the entries whose handler returned (one ``XACK`` per batch and stream; ``run``
   pipelines it with the next read, so a batch costs one round trip). Members of the group
   that hold nothing and were not seen for ``forget_idle`` are deleted on the way.

Entries that cannot be used go to the dead-letter stream with the reason (deadletter.py).
A handler that raises is called again with the same entry, in place (the entries after it
wait: order is kept), after ``retry_delay`` doubling to ``retry_cap``; each call counts as a
delivery in Redis (``XCLAIM``), and the ``max_deliveries``-th failure dead-letters it. A
handler that raises one of the ``transient`` errors (the store or a Redis is down) is retried
the same way for as long as it takes, without counting: a down dependency is not the entry's
fault. Redis itself down or restarting (connection refused, ``LOADING``) makes the loop wait
and reconnect with backoff; a group that vanished with a restart that lost data is created
again at the last entry this consumer acknowledged, not at the start of the stream.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

import redis

from traderunner.bus.deadletter import DeadLetterOf, move_to_dead
from traderunner.bus.delivery import TRANSIENT, Counters, Delivery, Handler
from traderunner.bus.envelope import Envelope, Reason
from traderunner.bus.monitor import GroupStats, forget_idle_consumers, topic_stats
from traderunner.bus.options import BusOptions
from traderunner.bus.publisher import FIELD, REDIS_DOWN
from traderunner.bus.topics import check_topic
from traderunner.errors import MessageError
from traderunner.redisdb.connection import bytes_client
from traderunner.redisdb.keys import Keys

log = logging.getLogger(__name__)


def ensure_group(client: redis.Redis, keys: Keys, topic: str, group: str, start: str = "$") -> bool:
    """Create ``group`` on ``topic``'s stream (and the stream) unless it exists; True if made.

    ``start``: ``"$"`` (entries published from now on) or ``"0"`` (everything the stream
    holds). A publisher calls it for the groups that must see its first message even when
    their consumer has never run yet (the stream service, for the trader's group).
    """
    try:
        client.xgroup_create(keys.bus_stream(check_topic(topic)), group, id=start, mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
        return False
    return True


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class Consumer:
    """One consumer ``name`` in ``group``, reading ``topics`` and calling ``handler``.

    ``accept`` lists the message types the handler understands with their versions
    (``{"signal": {1}}``); anything else is dead-lettered. ``start`` is where a group that
    does not exist yet begins: ``"$"`` (only what is published from now on; the default) or
    ``"0"`` (everything the stream still holds). Give each process its own stable ``name``
    (one per host and service, say): a restart under the same name takes its pending entries
    back at once. The client may decode responses or not: the consumer reads through a
    byte-returning sibling (an entry that is not UTF-8 is dead-lettered, not fatal).
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        group: str,
        name: str,
        topics: Sequence[str],
        handler: Handler,
        accept: Mapping[str, Collection[int]],
        options: BusOptions | None = None,
        start: str = "$",
        transient: tuple[type[BaseException], ...] = TRANSIENT,
    ) -> None:
        if not topics:
            raise ValueError("a consumer needs at least one topic")
        self.keys = keys
        self.group = group
        self.name = name
        self.topics = tuple(check_topic(t) for t in topics)
        self.handler = handler
        self.accept = {k: frozenset(v) for k, v in accept.items()}
        self.options = options or BusOptions()
        self.start = start
        self.transient = transient
        self.counters = Counters()
        self.redis, self._owns_redis = bytes_client(client)
        self._streams = {keys.bus_stream(t): t for t in self.topics}
        self._stop = threading.Event()
        self._ready = False
        self._next_claim = 0.0
        self._next_forget = 0.0
        self._acks: dict[str, list[str]] = {s: [] for s in self._streams}
        self._resume: dict[str, str] = {}  # stream -> where a vanished group is re-created
        self._down_since: float | None = None

    # -- running -----------------------------------------------------------------------------

    def run(self) -> None:
        """Consume until :meth:`stop`; survives Redis restarts. Returns after the current
        batch (within ``options.block`` seconds of the stop)."""
        delay = 0.05
        while not self._stop.is_set():
            try:
                self.poll(flush=False)  # the acks ride along with the next read
                delay = 0.05
            except REDIS_DOWN as exc:
                self._lost(exc)
                self._stop.wait(delay)
                delay = min(delay * 2, 1.0)
        with contextlib.suppress(*REDIS_DOWN):
            self._flush_acks()  # what is left goes back to Redis on the next start

    def stop(self) -> None:
        """Ask :meth:`run` to return; safe from any thread and from signal handlers."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        """Release the byte client made for this consumer (the given one stays open)."""
        if self._owns_redis:
            self.redis.close()

    def poll(self, block: float | None = None, *, flush: bool = True) -> int:
        """One step: prepare if needed, claim if due, read one batch and handle it.

        Returns how many entries the handler took. ``flush=False`` leaves this batch's
        ``XACK`` to be sent in one round trip with the next read (what ``run`` does: one
        round trip per batch instead of two). Raises redis' connection errors when Redis is
        down (``run`` waits and retries them).
        """
        before = self.counters.handled
        try:
            self._step(block, flush)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._group_vanished()
        return self.counters.handled - before

    def stats(self) -> list[GroupStats]:
        """This group's figures on each of its topics (lag, pending, consumers)."""
        out = []
        for topic in self.topics:
            found = topic_stats(self.redis, self.keys, topic).group(self.group)
            if found is not None:
                out.append(found)
        return out

    # -- the three phases --------------------------------------------------------------------

    def _step(self, block: float | None, flush: bool) -> None:
        if not self._ready:
            self._prepare()
        if time.monotonic() >= self._next_claim:
            self._claim_pass()
            interval = min(self.options.claim_idle / 4, 5.0)
            self._next_claim = time.monotonic() + interval
        wait = self.options.block_ms if block is None else max(1, round(block * 1000))
        pipe = self.redis.pipeline(transaction=False)
        acked = self._queue_acks(pipe)
        pipe.xreadgroup(
            self.group,
            self.name,
            dict.fromkeys(self._streams, ">"),
            count=self.options.batch,
            block=wait,
        )
        reply = pipe.execute()[-1]
        self._acked(acked)
        self._recovered()
        for stream, entries in cast(list[Any], reply or []):
            for entry_id, fields in entries:
                self._deliver(_s(stream), _s(entry_id), fields or {}, 1)
                if self._stop.is_set():
                    break
        if flush or self._stop.is_set():
            self._flush_acks()

    def _prepare(self) -> None:
        for stream in self._streams:
            self._ensure_group(stream, self._resume.get(stream, self.start))
            if stream not in self._resume:
                self._resume[stream] = self._last_delivered(stream)
        self._flush_acks()
        for stream in self._streams:
            self._take_back_own(stream)
        self._flush_acks()
        for group in self.stats():
            if group.trimmed_unread:  # away while more than the stream keeps was published
                self.counters.trimmed += group.trimmed_unread
                log.warning(
                    "bus: %d entries of %s were trimmed before group %s read them: raise "
                    "TRADERUNNER_BUS_STREAM_MAXLEN",
                    group.trimmed_unread,
                    group.topic,
                    self.group,
                )
        self._ready = True

    def _claim_pass(self) -> None:
        if time.monotonic() >= self._next_forget:
            for topic in self.topics:
                forget_idle_consumers(
                    self.redis, self.keys, topic, self.group, self.options.forget_idle
                )
            self._next_forget = time.monotonic() + min(self.options.forget_idle, 3600.0)
        for stream in self._streams:
            cursor = "0-0"
            while not self._stop.is_set():
                reply: list[Any] = self.redis.xautoclaim(  # type: ignore[assignment]
                    stream,
                    self.group,
                    self.name,
                    self.options.claim_idle_ms,
                    cursor,
                    count=self.options.batch,
                )
                cursor = _s(reply[0])
                entries = [(_s(i), f) for i, f in reply[1] if f is not None]
                self._note_trimmed(stream, [_s(i) for i in reply[2]] if len(reply) > 2 else [])
                if entries:
                    self.counters.claimed += len(entries)
                    log.warning(
                        "bus: %s/%s took over %d entries left pending on %s",
                        self.group,
                        self.name,
                        len(entries),
                        self._streams[stream],
                    )
                    counts = self._deliveries(stream, [i for i, _ in entries])
                    for entry_id, fields in entries:
                        self._deliver(stream, entry_id, fields, counts.get(entry_id, 2))
                self._flush_acks()
                if cursor == "0-0":
                    break

    def _take_back_own(self, stream: str) -> None:
        low = "-"
        while not self._stop.is_set():
            rows = cast(
                list[Any],
                self.redis.xpending_range(
                    stream, self.group, low, "+", self.options.batch, consumername=self.name
                ),
            )
            if not rows:
                return
            ids: list[Any] = [_s(r["message_id"]) for r in rows]
            counts = {_s(r["message_id"]): int(r["times_delivered"]) for r in rows}
            # XCLAIM counts one more delivery each, and drops ids the stream no longer has.
            claimed = cast(
                list[Any], self.redis.xclaim(stream, self.group, self.name, 0, list(ids))
            )
            got = {_s(i): f for i, f in claimed if f is not None}
            self._note_trimmed(stream, [i for i in ids if i not in got])
            for entry_id in ids:
                if entry_id in got:
                    self._deliver(stream, entry_id, got[entry_id], counts[entry_id] + 1)
            self._flush_acks()
            low = "(" + ids[-1]

    # -- one entry ---------------------------------------------------------------------------

    def _deliver(self, stream: str, entry_id: str, fields: Mapping[Any, Any], count: int) -> None:
        """Handle one entry: on return it is queued for XACK, dead-lettered, or (on a stop or
        when another consumer took it over) left pending."""
        topic = self._streams[stream]
        opts = self.options
        raw = fields.get(FIELD.encode(), fields.get(FIELD))
        if count > opts.max_deliveries:
            self._dead(
                stream,
                entry_id,
                fields,
                Reason.UNDELIVERABLE,
                f"delivered {count} times without an acknowledgement (its consumers died "
                "handling it)",
                count,
            )
            return
        try:
            if raw is None:
                raise MessageError(Reason.BAD_ENVELOPE, f"entry has no {FIELD!r} field")
            envelope = Envelope.decode(raw, topic=topic, accept=self.accept)
        except MessageError as exc:
            self._dead(stream, entry_id, fields, exc.reason, str(exc), count)
            return
        delivery = Delivery(envelope, topic, entry_id, count)
        delay = opts.retry_delay
        transient_logged = False
        while True:
            try:
                self.handler(delivery)
            except self.transient as exc:
                self.counters.failed += 1
                if not transient_logged:
                    log.warning(
                        "bus: %s handler cannot finish entry %s on %s (%s: %s); retrying",
                        self.group,
                        entry_id,
                        topic,
                        type(exc).__name__,
                        exc,
                    )
                    transient_logged = True
                if not self._wait_and_hold(stream, entry_id, delay, count=False):
                    return
            except Exception as exc:
                self.counters.failed += 1
                log.warning(
                    "bus: %s handler failed on entry %s of %s, delivery %d of %d (%s: %s)",
                    self.group,
                    entry_id,
                    topic,
                    delivery.deliveries,
                    opts.max_deliveries,
                    type(exc).__name__,
                    exc,
                )
                if delivery.deliveries >= opts.max_deliveries:
                    detail = f"handler raised {type(exc).__name__}: {exc}".replace("\n", " ")
                    self._dead(
                        stream, entry_id, fields, Reason.HANDLER_FAILED, detail, delivery.deliveries
                    )
                    return
                if not self._wait_and_hold(stream, entry_id, delay, count=True):
                    return
                delivery = replace(delivery, deliveries=delivery.deliveries + 1)
            else:
                self.counters.handled += 1
                self._acks[stream].append(entry_id)
                return
            delay = min(delay * 2, opts.retry_cap)

    def _wait_and_hold(self, stream: str, entry_id: str, delay: float, *, count: bool) -> bool:
        """Sleep ``delay`` then re-claim the entry (resetting its idle time, so no other
        consumer takes it meanwhile; ``count``: as one more delivery). False: stop now, the
        entry is no longer ours (taken over or trimmed), or the stop was asked."""
        with contextlib.suppress(*REDIS_DOWN):
            self._flush_acks()  # the entries before this one are done: don't let them idle
        if self._stop.wait(delay):
            return False
        try:
            got = cast(
                list[Any],
                self.redis.xclaim(stream, self.group, self.name, 0, [entry_id], justid=not count),
            )
        except REDIS_DOWN:
            return True  # the handler's own retry will tell; the entry stays pending
        except redis.ResponseError:
            return True
        return bool(got)

    def _dead(
        self,
        stream: str,
        entry_id: str,
        fields: Mapping[Any, Any],
        reason: str,
        detail: str,
        count: int,
    ) -> None:
        topic = self._streams[stream]
        log.warning(
            "bus: %s dead-letters entry %s of %s (%s: %s)",
            self.group,
            entry_id,
            topic,
            reason,
            detail,
        )
        letter = DeadLetterOf(topic, entry_id, fields, self.group, self.name, count)
        move_to_dead(self.redis, self.keys, letter, str(reason), detail, self.options.dead_maxlen)
        self.counters.dead_lettered += 1

    # -- bookkeeping -------------------------------------------------------------------------

    def _flush_acks(self) -> None:
        pipe = self.redis.pipeline(transaction=False)
        acked = self._queue_acks(pipe)
        if acked:
            pipe.execute()  # on a connection error the ids stay queued for the next flush
            self._acked(acked)

    def _queue_acks(self, pipe: Any) -> dict[str, list[str]]:
        """Add an XACK per stream with handled entries to ``pipe``; what it will ack."""
        pending = {s: list(ids) for s, ids in self._acks.items() if ids}
        for stream, ids in pending.items():
            pipe.xack(stream, self.group, *ids)
        return pending

    def _acked(self, acked: dict[str, list[str]]) -> None:
        for stream, ids in acked.items():
            newest = max(ids, key=_id_key)
            if _id_key(newest) > _id_key(self._resume.get(stream, "0-0")):
                self._resume[stream] = newest
            done = set(ids)
            self._acks[stream] = [i for i in self._acks[stream] if i not in done]

    def _deliveries(self, stream: str, ids: list[str]) -> dict[str, int]:
        rows = cast(
            list[Any],
            self.redis.xpending_range(
                stream,
                self.group,
                min(ids, key=_id_key),
                max(ids, key=_id_key),
                len(ids) + self.options.batch,
                consumername=self.name,
            ),
        )
        return {_s(r["message_id"]): int(r["times_delivered"]) for r in rows}

    def _note_trimmed(self, stream: str, ids: list[str]) -> None:
        if ids:
            self.counters.trimmed += len(ids)
            log.warning(
                "bus: %d pending entries of %s were trimmed before %s handled them (a consumer "
                "was away longer than the stream keeps entries: raise TRADERUNNER_BUS_STREAM_"
                "MAXLEN)",
                len(ids),
                self._streams[stream],
                self.group,
            )

    def _ensure_group(self, stream: str, start: str) -> bool:
        return ensure_group(self.redis, self.keys, self._streams[stream], self.group, start)

    def _last_delivered(self, stream: str) -> str:
        for row in cast(list[dict[Any, Any]], self.redis.xinfo_groups(stream)):
            if _s(row.get(b"name", row.get("name"))) == self.group:
                return _s(row.get(b"last-delivered-id", row.get("last-delivered-id")))
        return "0-0"

    def _group_vanished(self) -> None:
        # The group is gone: Redis restarted without it (lost data). Re-create it where this
        # consumer had got to; if another member re-created it further on, move it back so
        # nothing after our point is skipped (re-reads are harmless: handlers are idempotent).
        log.warning("bus: group %s vanished (Redis lost data?); re-creating it", self.group)
        for stream in self._streams:
            resume = self._resume.get(stream, "0-0")
            if not self._ensure_group(stream, resume):
                current = self._last_delivered(stream)
                if _id_key(current) > _id_key(resume):
                    self.redis.xgroup_setid(stream, self.group, resume)
        self._ready = False

    def _lost(self, exc: BaseException) -> None:
        self._ready = False
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("bus: %s/%s lost Redis (%s); reconnecting", self.group, self.name, exc)

    def _recovered(self) -> None:
        if self._down_since is not None:
            log.warning(
                "bus: %s/%s reconnected after %.1f s",
                self.group,
                self.name,
                time.monotonic() - self._down_since,
            )
            self.counters.reconnects += 1
            self._down_since = None
