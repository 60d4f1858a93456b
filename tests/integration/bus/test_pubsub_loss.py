"""Fault 4 of issue 10, kept as a test so the reason for Streams stays visible.

The guide this system comes from sends signals with ``PUBLISH`` and reads them with
``pubsub.listen()``. A subscriber that is away (restarting, reconnecting) loses exactly what
was published meanwhile; a consumer group on the stream, away just as long, gets everything.
"""

from __future__ import annotations

import pytest
import redis

from tests.integration.bus.helpers import FAST, Recorder, drain
from traderunner.bus import Consumer, Envelope, LiveFeed, Publisher, recent
from traderunner.errors import RedisError
from traderunner.redisdb.keys import Keys


def batch(label: str, n: int) -> list[Envelope]:
    return [Envelope.new("signals", "signal", {"batch": label, "n": i}) for i in range(n)]


def received(feed: LiveFeed, n: int) -> list[Envelope]:
    out = []
    while len(out) < n and (envelope := feed.get(timeout=2.0)) is not None:
        out.append(envelope)
    return out


def test_a_pubsub_subscriber_loses_exactly_what_was_sent_while_it_was_away(
    publisher: Publisher, client: redis.Redis, keys: Keys
) -> None:
    before, during, after = batch("before", 30), batch("during", 40), batch("after", 30)
    recorder = Recorder()

    def trader_process() -> Consumer:  # the same trader each time it (re)starts
        return Consumer(
            client,
            keys,
            group="trader",
            name="t1",
            topics=["signals"],
            handler=recorder,
            accept={"signal": {1}},
            options=FAST,
        )

    trader = trader_process()
    trader.poll(block=0.01)  # its group exists from now on

    feed = LiveFeed(client, keys, ["signals"])
    publisher.publish_many(before)
    got = received(feed, len(before))
    feed.close()  # the subscriber goes away (a restart, a dropped connection) ...
    trader.stop()  # ... and so does the trader
    publisher.publish_many(during)
    feed = LiveFeed(client, keys, ["signals"])  # both come back
    publisher.publish_many(after)
    got += received(feed, len(after))
    assert feed.get(timeout=0.2) is None
    feed.close()

    assert got == before + after  # everything "during" is gone for Pub/Sub, nothing else
    trader.close()
    trader = trader_process()
    drain(trader, lambda: len(recorder.seen) == 100)
    assert [d.envelope for d in recorder.seen] == before + during + after  # nothing lost
    trader.close()
    # What a screen can show of the time it was away: the stream's tail.
    assert recent(client, keys, "signals", 45) == during[-15:] + after


def test_a_glob_follows_every_timeframe(
    publisher: Publisher, client: redis.Redis, keys: Keys
) -> None:
    with LiveFeed(client, keys, ["candles.*"]) as feed:
        m5 = Envelope.new("candles.M5", "candle", {"close": 1.0})
        h1 = Envelope.new("candles.H1", "candle", {"close": 2.0})
        publisher.publish_many([m5, Envelope.new("signals", "signal", {}), h1])
        assert received(feed, 2) == [m5, h1]
        assert feed.get(timeout=0.2) is None


def test_malformed_live_messages_are_skipped_and_counted(
    publisher: Publisher, client: redis.Redis, keys: Keys
) -> None:
    with LiveFeed(client, keys, ["signals"]) as feed:
        client.publish(keys.bus_channel("signals"), "{oops")
        sent = Envelope.new("signals", "signal", {"n": 1})
        publisher.publish(sent)
        assert feed.get(timeout=2.0) == sent
        assert feed.malformed == 1


def test_following_a_redis_that_is_down_is_one_clear_line(keys: Keys) -> None:
    from tests.redishelpers import free_port
    from traderunner.redisdb.connection import connect

    down = connect(f"redis://:pw@127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    with pytest.raises(RedisError, match="bus: cannot follow signals") as info:
        LiveFeed(down, keys, ["signals"])
    assert "\n" not in str(info.value) and "traderunner redis status" in str(info.value)
