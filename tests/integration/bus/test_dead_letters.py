"""Fault 5 of issue 10: malformed entries go to the dead-letter stream with the reason, and the
consumer carries on with the entries after them. Written with raw XADDs, as a buggy or
foreign publisher (or a newer version of ours) would leave them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import redis

from tests.integration.bus.helpers import Recorder, drain
from traderunner.bus import Consumer, Envelope, Publisher, read_dead, requeue, topic_stats
from traderunner.bus.publisher import FIELD
from traderunner.redisdb.keys import Keys

MakeConsumer = Callable[..., tuple[Consumer, Recorder]]


def wire(**changes: Any) -> str:
    data: dict[str, Any] = {
        "topic": "signals",
        "type": "signal",
        "v": 1,
        "id": "sig-1",
        "ts_ns": 1,
        "payload": {"target": 1},
    }
    data.update(changes)
    return json.dumps(data)


# (fields of the raw entry, the reason it must be dead-lettered with, words of the detail)
MALFORMED: list[tuple[dict[str, Any], str, str]] = [
    ({FIELD: "{not json"}, "bad_json", "not JSON"),
    ({FIELD: b"\xff\xfe\x00garbage"}, "bad_json", "not JSON"),  # not even UTF-8
    ({FIELD: "[1, 2]"}, "bad_envelope", "a JSON list, not an object"),
    ({"payload": wire()}, "bad_envelope", "no 'envelope' field"),
    ({FIELD: json.dumps({"topic": "signals", "type": "signal"})}, "bad_envelope", "lacks v, id"),
    ({FIELD: wire(v="1")}, "bad_envelope", "v must be an integer"),
    ({FIELD: wire(payload=[1])}, "bad_envelope", "payload must be an object"),
    ({FIELD: wire(type="order")}, "unknown_type", "type 'order'; this reader knows signal"),
    ({FIELD: wire(v=2)}, "wrong_version", "version 2; this reader knows 1"),
    ({FIELD: wire(topic="candles.M5")}, "wrong_topic", "says topic 'candles.M5'"),
]


def test_malformed_entries_are_dead_lettered_with_the_reason_and_the_rest_flows(
    publisher: Publisher, make_consumer: MakeConsumer, client: redis.Redis, keys: Keys
) -> None:
    stream = keys.bus_stream("signals")
    good = [Envelope.new("signals", "signal", {"n": i}) for i in range(len(MALFORMED) + 1)]
    bad_ids = []
    publisher.publish(good[0])
    for (fields, _, _), envelope in zip(MALFORMED, good[1:], strict=True):
        bad_ids.append(client.xadd(stream, fields))  # type: ignore[arg-type]
        publisher.publish(envelope)  # a good one after each bad one
    consumer, seen = make_consumer()
    drain(consumer, lambda: len(seen.seen) == len(good))
    consumer.poll(block=0.01)
    assert [d.envelope for d in seen.seen] == good  # every good one, in order, once
    letters = sorted(read_dead(client, keys, "signals"), key=lambda d: bad_ids.index(d.entry_id))
    assert [d.entry_id for d in letters] == bad_ids
    for letter, (fields, reason, words) in zip(letters, MALFORMED, strict=True):
        assert letter.reason == reason, (letter, fields)
        assert words in letter.detail, (letter.detail, words)
        assert "\n" not in letter.detail
        assert (letter.topic, letter.group, letter.consumer) == ("signals", "trader", "c1")
        assert letter.deliveries == 1
        key = next(iter(fields))
        value = fields[key]
        kept = value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value
        assert letter.entry == {key: kept}  # the original, verbatim
    stats = topic_stats(client, keys, "signals")
    assert stats.dead_letters == len(MALFORMED)
    assert stats.groups[0].pending == 0 and stats.groups[0].lag == 0
    assert consumer.counters.dead_lettered == len(MALFORMED)
    assert consumer.counters.handled == len(good)


def test_a_dead_letter_can_be_requeued_once_its_reader_understands_it(
    publisher: Publisher, make_consumer: MakeConsumer, client: redis.Redis, keys: Keys
) -> None:
    stream = keys.bus_stream("signals")
    client.xadd(stream, {FIELD: wire(v=2, id="sig-v2")})
    old, _ = make_consumer(name="old")
    drain(old, lambda: old.counters.dead_lettered == 1)
    (letter,) = read_dead(client, keys, "signals")
    assert letter.reason == "wrong_version"
    # The trader is upgraded to read version 2: send the entry again.
    new, seen = make_consumer(group="trader", name="new", accept={"signal": {1, 2}})
    assert requeue(client, keys, "signals", letter.dead_id) is not None
    drain(new, lambda: len(seen.seen) == 1)
    assert seen.seen[0].envelope.id == "sig-v2" and seen.seen[0].envelope.v == 2
    assert read_dead(client, keys, "signals") == []
    assert requeue(client, keys, "signals", letter.dead_id) is None  # gone
