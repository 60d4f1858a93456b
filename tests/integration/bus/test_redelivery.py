"""At least once: entries left by a dead consumer, handler failures, a group that vanished.

A consumer "dies" here the way one does in production: it read entries with XREADGROUP and
never acknowledged them (tests/chaos/ kills real processes and the server itself).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from tests.integration.bus.helpers import FAST, Recorder, drain
from traderunner.bus import (
    BusOptions,
    Consumer,
    Delivery,
    Envelope,
    Publisher,
    read_dead,
    topic_stats,
)
from traderunner.errors import StoreError
from traderunner.redisdb.keys import Keys

MakeConsumer = Callable[..., tuple[Consumer, Recorder]]


def signals(n: int, start: int = 0) -> list[Envelope]:
    return [Envelope.new("signals", "signal", {"n": i}) for i in range(start, start + n)]


def read_and_die(client: redis.Redis, keys: Keys, name: str, count: int) -> list[str]:
    """Entries taken by consumer ``name`` of group ``trader`` that will never be acked."""
    stream = keys.bus_stream("signals")
    client.xgroup_create(stream, "trader", id="0", mkstream=True)
    reply = client.xreadgroup("trader", name, {stream: ">"}, count=count)
    return [entry_id for entry_id, _ in reply[0][1]]  # type: ignore[index]


def test_a_restart_under_the_same_name_takes_its_pending_entries_back_at_once(
    publisher: Publisher, make_consumer: MakeConsumer, client: redis.Redis, keys: Keys
) -> None:
    publisher.publish_many(signals(10))
    held = read_and_die(client, keys, "trader-host1", 4)
    consumer, seen = make_consumer(name="trader-host1", options=FAST)
    consumer.poll(block=0.01)  # well before claim_idle: its own entries come back at once
    assert [d.entry_id for d in seen.seen][:4] == held
    assert [d.deliveries for d in seen.seen] == [2] * 4 + [1] * 6
    assert topic_stats(client, keys, "signals").groups[0].pending == 0


def test_entries_of_a_dead_consumer_are_claimed_after_claim_idle(
    publisher: Publisher, make_consumer: MakeConsumer, client: redis.Redis, keys: Keys
) -> None:
    publisher.publish_many(signals(6))
    held = read_and_die(client, keys, "ghost", 6)
    consumer, seen = make_consumer(name="alive")
    began = time.monotonic()
    consumer.poll(block=0.01)
    assert seen.seen == []  # not idle long enough: the ghost might still be working
    stats = topic_stats(client, keys, "signals").group("trader")
    assert stats is not None and stats.pending == 6 and stats.oldest_pending_s is not None
    drain(consumer, lambda: len(seen.seen) == 6)
    assert time.monotonic() - began >= FAST.claim_idle - 0.05
    assert [d.entry_id for d in seen.seen] == held
    assert all(d.deliveries == 2 for d in seen.seen)
    assert consumer.counters.claimed == 6
    assert topic_stats(client, keys, "signals").groups[0].pending == 0


def test_a_failing_handler_is_retried_in_place_then_its_entry_is_dead_lettered(
    publisher: Publisher, make_consumer: MakeConsumer, client: redis.Redis, keys: Keys
) -> None:
    def fail(delivery: Delivery) -> BaseException | None:
        if delivery.envelope.payload["n"] == 1:
            return ValueError("no price for bar 1")
        return None

    consumer, seen = make_consumer(recorder=Recorder(fail=fail))
    sent = publisher.publish_many(signals(3))
    drain(consumer, lambda: consumer.counters.handled == 2)
    order = [(d.envelope.payload["n"], d.deliveries) for d in seen.seen]
    # Order kept: entry 2 waits until entry 1 is given up; 1 was tried max_deliveries times.
    assert order == [(0, 1), (1, 1), (1, 2), (1, 3), (2, 1)]
    (letter,) = read_dead(client, keys, "signals")
    assert (letter.reason, letter.entry_id, letter.deliveries) == ("handler_failed", sent[1], 3)
    assert letter.detail == "handler raised ValueError: no price for bar 1"
    assert (letter.group, letter.consumer) == ("trader", "c1")
    stats = topic_stats(client, keys, "signals")
    assert stats.groups[0].pending == 0 and stats.dead_letters == 1
    assert consumer.counters.failed == 3 and consumer.counters.dead_lettered == 1


def test_a_transient_failure_is_retried_without_counting_towards_the_dead_letter_limit(
    publisher: Publisher, make_consumer: MakeConsumer, client: redis.Redis, keys: Keys
) -> None:
    outage = {"left": 6}  # twice max_deliveries: the store is down for a while
    counted: list[int] = []  # what Redis says, so a crash mid-outage would not count either

    def fail(delivery: Delivery) -> BaseException | None:
        rows = client.xpending_range(keys.bus_stream("signals"), "trader", "-", "+", 1)
        counted.append(rows[0]["times_delivered"])  # type: ignore[index]
        if outage["left"] > 0:
            outage["left"] -= 1
            return StoreError("store at sqlite:///x is locked")
        return None

    consumer, seen = make_consumer(recorder=Recorder(fail=fail))
    publisher.publish_many(signals(2))
    drain(consumer, lambda: consumer.counters.handled == 2)
    assert [d.envelope.payload["n"] for d in seen.seen] == [0] * 7 + [1]
    assert all(d.deliveries == 1 for d in seen.seen)  # a down store is not the entry's fault
    assert counted == [1] * 8
    assert read_dead(client, keys, "signals") == []
    pending = client.xpending_range(keys.bus_stream("signals"), "trader", "-", "+", 10)
    assert pending == []


def test_an_entry_whose_consumers_keep_dying_is_dead_lettered_as_undeliverable(
    publisher: Publisher, make_consumer: MakeConsumer, client: redis.Redis, keys: Keys
) -> None:
    (poison,) = publisher.publish_many(signals(1))
    stream = keys.bus_stream("signals")
    read_and_die(client, keys, "ghost-0", 1)
    for k in range(1, FAST.max_deliveries):  # each new consumer took it and died as well
        client.xclaim(stream, "trader", f"ghost-{k}", 0, [poison])
    publisher.publish_many(signals(1, start=1))
    consumer, seen = make_consumer(name="alive")
    drain(consumer, lambda: consumer.counters.dead_lettered == 1 and len(seen.seen) == 1)
    assert [d.envelope.payload["n"] for d in seen.seen] == [1]  # the handler never saw it
    (letter,) = read_dead(client, keys, "signals")
    assert letter.reason == "undeliverable" and letter.entry_id == poison
    assert letter.deliveries == FAST.max_deliveries + 1


def test_a_vanished_group_is_recreated_where_the_consumer_was_not_at_the_start(
    publisher: Publisher, make_consumer: MakeConsumer, client: redis.Redis, keys: Keys
) -> None:
    consumer, seen = make_consumer()
    publisher.publish_many(signals(10))
    drain(consumer, lambda: len(seen.seen) == 10)
    consumer.poll(block=0.01)  # acks flushed
    client.xgroup_destroy(keys.bus_stream("signals"), "trader")  # a restart that lost it
    publisher.publish_many(signals(5, start=10))
    drain(consumer, lambda: len(seen.seen) == 15)
    consumer.poll(block=0.01)
    assert [d.envelope.payload["n"] for d in seen.seen] == list(range(15))  # nothing twice
    group = topic_stats(client, keys, "signals").group("trader")
    assert group is not None and (group.pending, group.lag) == (0, 0)


def test_a_stream_lost_with_everything_else_is_followed_again(
    publisher: Publisher, make_consumer: MakeConsumer, client: redis.Redis, keys: Keys
) -> None:
    consumer, seen = make_consumer()
    publisher.publish_many(signals(3))
    drain(consumer, lambda: len(seen.seen) == 3)
    consumer.poll(block=0.01)
    client.delete(keys.bus_stream("signals"))  # Redis came back empty
    publisher.publish_many(signals(2, start=3))  # new entries have later ids than before
    drain(consumer, lambda: len(seen.seen) == 5)
    assert [d.envelope.payload["n"] for d in seen.seen] == [0, 1, 2, 3, 4]


def test_run_acks_with_its_next_read_and_stops_within_the_block_timeout(
    make_consumer: MakeConsumer, publisher: Publisher, client: redis.Redis, keys: Keys
) -> None:
    import threading

    def pending() -> int:
        group = topic_stats(client, keys, "signals").group("trader")
        return -1 if group is None else group.pending

    def stop_at_the_last(delivery: Delivery) -> None:
        if delivery.envelope.payload["n"] == 3:
            consumer.stop()  # as a SIGTERM while handling would

    consumer, seen = make_consumer(recorder=Recorder(fail=stop_at_the_last))
    thread = threading.Thread(target=consumer.run)
    thread.start()
    deadline = time.monotonic() + 5
    for k in range(3):  # one at a time: each ack goes out with the read that follows
        publisher.publish_many(signals(1, start=k))
        while (len(seen.seen) <= k or pending() != 0) and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(seen.seen) == 3 and pending() == 0
    publisher.publish_many(signals(1, start=3))
    thread.join(timeout=5)
    assert not thread.is_alive() and len(seen.seen) == 4
    assert pending() == 0  # the last batch's ack was sent on the way out
    again, _ = make_consumer(name="c2", options=BusOptions(block=1.0))
    thread = threading.Thread(target=again.run)
    thread.start()
    time.sleep(0.2)  # blocked in XREADGROUP, nothing to read
    began = time.monotonic()
    again.stop()
    thread.join(timeout=5)
    assert not thread.is_alive() and time.monotonic() - began < 1.5  # within one block


def test_members_gone_for_good_are_forgotten_once_they_hold_nothing(
    publisher: Publisher, make_consumer: MakeConsumer, client: redis.Redis, keys: Keys
) -> None:
    from dataclasses import replace

    stream = keys.bus_stream("signals")
    publisher.publish_many(signals(2))
    read_and_die(client, keys, "holder", 2)  # died holding two entries
    client.xreadgroup("trader", "idler", {stream: ">"})  # died holding nothing
    time.sleep(0.35)
    consumer, seen = make_consumer(name="alive", options=replace(FAST, forget_idle=0.3))

    def members() -> set[str]:
        return {c["name"] for c in client.xinfo_consumers(stream, "trader")}  # type: ignore[union-attr]

    consumer.poll(block=0.01)  # forgets "idler"; takes over "holder"'s entries
    assert len(seen.seen) == 2
    assert members() == {"holder", "alive"}  # "holder" held entries when it was looked at
    time.sleep(0.35)
    consumer.poll(block=0.01)
    assert members() == {"alive"}


def test_pending_entries_trimmed_away_are_counted_and_dropped(
    publisher: Publisher, make_consumer: MakeConsumer, client: redis.Redis, keys: Keys
) -> None:
    stream = keys.bus_stream("signals")
    publisher.publish_many(signals(5))
    read_and_die(client, keys, "ghost", 3)  # died holding 3
    client.xreadgroup("trader", "me", {stream: ">"}, count=2)  # "me" holds 2, then restarts
    client.xtrim(stream, maxlen=0)  # away longer than the stream keeps entries
    me, seen = make_consumer(name="me")
    me.poll(block=0.01)
    # Its own 2 when it took them back, the ghost's 3 in the claim pass (XAUTOCLAIM reports
    # deleted entries whatever their idle time).
    assert me.counters.trimmed == 5
    assert seen.seen == [] and me.counters.claimed == 0
    assert client.xpending(stream, "trader")["pending"] == 0  # type: ignore[index]
