"""Publishing and consuming through a real Valkey: streams, groups, acks, trimming, live copy."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
import redis

from tests.integration.bus.helpers import FAST, Recorder, drain
from traderunner.bus import (
    BusOptions,
    Consumer,
    Envelope,
    LiveFeed,
    Publisher,
    ensure_group,
    list_topics,
    topic_stats,
)
from traderunner.bus.publisher import FIELD
from traderunner.errors import MessageError, RedisError
from traderunner.redisdb.connection import connect
from traderunner.redisdb.keys import Keys

MakeConsumer = Callable[..., tuple[Consumer, Recorder]]


def signal(n: int, **payload: Any) -> Envelope:
    return Envelope.new("signals", "signal", {"n": n, **payload})


def test_published_envelope_reaches_the_handler_once_and_is_acked(
    publisher: Publisher, make_consumer: MakeConsumer, client: redis.Redis, keys: Keys
) -> None:
    consumer, seen = make_consumer()
    sent = [signal(i, symbol="AAA", target=1) for i in range(25)]
    entry_ids = publisher.publish_many(sent[:20]) + [publisher.publish(e) for e in sent[20:]]
    drain(consumer, lambda: len(seen.seen) >= 25)
    consumer.poll(block=0.01)
    assert [d.envelope for d in seen.seen] == sent  # same values, same order
    assert [d.entry_id for d in seen.seen] == entry_ids
    assert all(d.deliveries == 1 and d.topic == "signals" for d in seen.seen)
    stats = topic_stats(client, keys, "signals")
    group = stats.group("trader")
    assert stats.length == 25 and group is not None
    assert (group.pending, group.lag, group.consumers) == (0, 0, 1)
    assert group.last_delivered_id == entry_ids[-1]
    assert consumer.counters.handled == 25 and consumer.counters.dead_lettered == 0
    # The stream entry is the envelope's JSON, one field, readable with redis-cli.
    (_, fields), *_ = client.xrange(keys.bus_stream("signals"), count=1)  # type: ignore[misc]
    assert json.loads(fields[FIELD])["payload"] == {"n": 0, "symbol": "AAA", "target": 1}


def test_a_new_group_starts_at_now_by_default_or_at_the_start_when_asked(
    publisher: Publisher, make_consumer: MakeConsumer
) -> None:
    publisher.publish(signal(0))
    late, late_seen = make_consumer(group="late", start="$")
    late.poll(block=0.01)  # creates the group at the stream's end
    full, full_seen = make_consumer(group="audit", start="0")
    publisher.publish(signal(1))
    drain(late, lambda: len(late_seen.seen) == 1)
    drain(full, lambda: len(full_seen.seen) == 2)
    assert [d.envelope.payload["n"] for d in late_seen.seen] == [1]
    assert [d.envelope.payload["n"] for d in full_seen.seen] == [0, 1]


def test_a_group_made_by_the_publisher_side_keeps_everything_for_its_first_run(
    publisher: Publisher, make_consumer: MakeConsumer, client: redis.Redis, keys: Keys
) -> None:
    assert ensure_group(client, keys, "signals", "trader")  # the stream service's start-up
    assert not ensure_group(client, keys, "signals", "trader")  # already there: unchanged
    publisher.publish_many([signal(0), signal(1)])  # the trader has never run yet
    trader, seen = make_consumer(start="$")  # "$" applies only to a group it must create
    drain(trader, lambda: len(seen.seen) == 2)


def test_groups_are_independent_and_members_of_one_group_share_the_work(
    publisher: Publisher, make_consumer: MakeConsumer
) -> None:
    a, a_seen = make_consumer(name="a", options=BusOptions(block=0.05, batch=5))
    b, b_seen = make_consumer(name="b", options=BusOptions(block=0.05, batch=5))
    other, other_seen = make_consumer(group="recorder", name="a")
    sent = publisher.publish_many([signal(i) for i in range(40)])
    for _ in range(20):  # turns of one batch of 5 each
        a.poll(block=0.01)
        b.poll(block=0.01)
        if len(a_seen.seen) + len(b_seen.seen) >= 40:
            break
    drain(other, lambda: len(other_seen.seen) == 40)
    assert len(a_seen.seen) + len(b_seen.seen) == 40
    assert a_seen.seen and b_seen.seen  # both took a share
    assert sorted(d.entry_id for d in a_seen.seen + b_seen.seen) == sorted(sent)


def test_one_consumer_reads_several_topics(
    publisher: Publisher, make_consumer: MakeConsumer
) -> None:
    consumer, seen = make_consumer(
        topics=["candles.M5", "signals"], accept={"signal": {1}, "candle": {1}}
    )
    publisher.publish(Envelope.new("candles.M5", "candle", {"close": 10.5}))
    publisher.publish(signal(1))
    drain(consumer, lambda: len(seen.seen) == 2)
    assert {(d.topic, d.envelope.type) for d in seen.seen} == {
        ("candles.M5", "candle"),
        ("signals", "signal"),
    }


def test_streams_are_trimmed_to_about_maxlen(client: redis.Redis, keys: Keys) -> None:
    publisher = Publisher(client, keys, BusOptions(stream_maxlen=100), live=False)
    for start in range(0, 2000, 100):
        publisher.publish_many([signal(i) for i in range(start, start + 100)])
    length = client.xlen(keys.bus_stream("signals"))
    # MAXLEN ~ trims whole stream nodes (100 entries each by default): never below the bound.
    assert 100 <= length <= 300, length  # type: ignore[operator]
    last = client.xrevrange(keys.bus_stream("signals"), count=1)
    assert json.loads(last[0][1][FIELD])["payload"]["n"] == 1999  # type: ignore[index]


def test_the_same_envelope_goes_to_the_live_channel(
    publisher: Publisher, client: redis.Redis, keys: Keys
) -> None:
    with LiveFeed(client, keys, ["signals"]) as feed:
        sent = signal(7, symbol="BBB")
        publisher.publish(sent)
        assert feed.get(timeout=5) == sent
    quiet = Publisher(client, keys, FAST, live=False)
    with LiveFeed(client, keys, ["signals"]) as feed:
        quiet.publish(signal(8))
        assert feed.get(timeout=0.3) is None  # live=False: only the stream
    assert client.xlen(keys.bus_stream("signals")) == 2


def test_a_payload_json_cannot_hold_is_refused_and_nothing_is_sent(
    publisher: Publisher, client: redis.Redis, keys: Keys
) -> None:
    good = signal(1)
    bad = signal(2, price=math.nan)
    with pytest.raises(MessageError, match="cannot be sent as JSON") as info:
        publisher.publish_many([good, bad])
    assert info.value.reason == "bad_json"
    with pytest.raises(MessageError):
        publisher.publish(Envelope.new("signals", "signal", {"when": {1, 2}}))
    with pytest.raises(ValueError, match="invalid bus topic"):
        publisher.publish(Envelope.new("bad:topic", "signal", {}))
    assert client.xlen(keys.bus_stream("signals")) == 0


@pytest.mark.timeout(30)
def test_publishing_to_a_redis_that_stays_down_raises_one_clear_line(keys: Keys) -> None:
    from tests.redishelpers import free_port

    password = "s3cret-pw"
    down = connect(f"redis://:{password}@127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    publisher = Publisher(down, keys, BusOptions(reconnect_for=0.5))
    with pytest.raises(RedisError, match="bus: cannot publish to 'signals'") as info:
        publisher.publish(signal(1))
    message = str(info.value)
    assert "\n" not in message and password not in message
    assert "traderunner redis status" in message


def test_monitoring_lists_topics_and_reads_lag_without_consuming(
    publisher: Publisher, make_consumer: MakeConsumer, client: redis.Redis, keys: Keys
) -> None:
    consumer, seen = make_consumer(topics=["signals", "candles.M5"], accept={"signal": {1}})
    consumer.poll(block=0.01)  # groups exist, nothing read yet
    publisher.publish_many([signal(i) for i in range(7)])
    publisher.publish(Envelope.new("candles.M5", "candle", {}))  # a type it does not accept
    assert list_topics(client, keys) == ["candles.M5", "signals"]
    before = {g.topic: g for g in consumer.stats()}
    assert before["signals"].lag == 7 and before["signals"].pending == 0
    assert before["candles.M5"].lag == 1
    drain(consumer, lambda: len(seen.seen) == 7 and consumer.counters.dead_lettered == 1)
    consumer.poll(block=0.01)
    after = {g.topic: g for g in consumer.stats()}
    assert (after["signals"].lag, after["signals"].pending, after["signals"].consumers) == (0, 0, 1)
    assert list_topics(client, keys) == ["candles.M5", "signals"]  # the dead stream is no topic
    candles = topic_stats(client, keys, "candles.M5")
    assert (candles.length, candles.dead_letters) == (1, 1)
    assert topic_stats(client, keys, "nothing").length == 0  # never published: all zero


def test_a_refused_write_is_one_clear_line(
    publisher: Publisher, client: redis.Redis, keys: Keys
) -> None:
    client.set(keys.bus_stream("signals"), "not a stream")
    with pytest.raises(RedisError, match="refused publishing to 'signals': WRONGTYPE") as info:
        publisher.publish(signal(1))
    assert "\n" not in str(info.value)


def test_entries_trimmed_before_a_group_read_them_are_reported(
    client: redis.Redis, keys: Keys
) -> None:
    publisher = Publisher(client, keys, BusOptions(stream_maxlen=100), live=False)
    ensure_group(client, keys, "signals", "trader")  # the trader is away from the start
    publisher.publish_many([signal(i) for i in range(1000)])
    stats = topic_stats(client, keys, "signals")
    group = stats.group("trader")
    assert group is not None and group.lag == stats.length  # what it can still read
    assert group.trimmed_unread == 1000 - stats.length > 0  # lost to it, and visible
    trader = Consumer(
        client,
        keys,
        group="trader",
        name="t",
        topics=["signals"],
        handler=lambda d: None,
        accept={"signal": {1}},
        options=FAST,
    )
    trader.poll(block=0.01)  # reads what is left (one batch of 100)
    assert trader.counters.trimmed == 1000 - stats.length  # it says so when it starts
    group = topic_stats(client, keys, "signals").group("trader")
    assert group is not None and group.trimmed_unread == 0  # caught up with the stream's head
    ensure_group(client, keys, "signals", "fresh", start="$")
    fresh = topic_stats(client, keys, "signals").group("fresh")
    assert fresh is not None and (fresh.lag, fresh.trimmed_unread) == (0, 0)
