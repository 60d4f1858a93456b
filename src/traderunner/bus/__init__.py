"""The bus: durable topics on Redis Streams, with an ephemeral Pub/Sub copy for screens.

::

    from traderunner.bus import BusOptions, Consumer, Delivery, Envelope, LiveFeed, Publisher

The market-data stream, the signal service and the trader never import one another; they
talk through topics (topics.py). Each message is one :class:`Envelope` (topic, type,
version ``v``, id, ``ts_ns``, JSON payload). A :class:`Publisher` appends it to the topic's
stream (``XADD``, trimmed to about ``bus_stream_maxlen`` entries) and ``PUBLISH``es the same
JSON on the topic's channel, in one round trip. A :class:`Consumer` is one member of a
consumer group (one group per service): it reads new entries with ``XREADGROUP``, calls its
handler for each, and ``XACK``s an entry only after the handler returned. Entries left
pending by a consumer that died are taken over after ``claim_idle`` (``XAUTOCLAIM``);
entries that cannot be used, or that failed ``max_deliveries`` times, go to the topic's
dead-letter stream with the reason (deadletter.py). :class:`LiveFeed` follows the Pub/Sub
copy, and loses what is sent while it is away. :func:`topic_stats` gives lag, pending
and dead-letter counts for monitoring.

The delivery contract (what a handler must do)
----------------------------------------------
The bus delivers **at least once**, never "exactly once": an entry is handed out again when
its consumer died before ``XACK`` (after its effects were committed, or halfway), when Redis
lost its last second of AOF on a crash (acks and deliveries included), or when a publisher
retried an ``XADD`` whose reply it never got. Exactly once *in effect* is the handler's part:

* the **envelope id is the idempotency key**: commit the effect together with the id in one
  transaction (the trader's order row has a unique ``signal_id``), and when the id is already
  there, do nothing and return normally (the entry is then acknowledged);
* return only when the effect is **committed**: the ack follows the return, so an effect that
  was not committed yet is redone on redelivery, never lost;
* raise to have the entry delivered again (after ``retry_delay``, doubling; the entries after
  it wait, so one consumer keeps its topic's order); raise a ``transient`` error (the store
  or a Redis down) to be retried for as long as it takes without counting towards the
  dead-letter limit;
* finish well within ``claim_idle`` for a whole batch: an entry held longer is taken over by
  another member of the group and handled twice (harmlessly, by the rule above);
* do not rely on order **across topics**: each stream keeps its own order, but two streams
  read together interleave by arrival; key work on the message's own times (a signal's bar).

Publishers that can repeat themselves after a crash (a replay restarted midway) give the
envelope a deterministic id (:func:`stable_id` of strategy, symbol and bar), so the repeat is
recognised by the same rule. Redis itself is a dependency both sides outlive: the consumer
waits and reconnects for ever, a publisher for ``reconnect_for`` seconds before it raises
:class:`~traderunner.errors.RedisError`.
"""

from traderunner.bus.consumer import Consumer, ensure_group
from traderunner.bus.deadletter import DeadLetter, read_dead, requeue
from traderunner.bus.delivery import TRANSIENT, Counters, Delivery, Handler
from traderunner.bus.envelope import Envelope, Reason, new_id, stable_id
from traderunner.bus.live import LiveFeed, recent
from traderunner.bus.monitor import GroupStats, TopicStats, list_topics, topic_stats
from traderunner.bus.options import BusOptions
from traderunner.bus.publisher import Publisher

__all__ = [
    "TRANSIENT",
    "BusOptions",
    "Consumer",
    "Counters",
    "DeadLetter",
    "Delivery",
    "Envelope",
    "GroupStats",
    "Handler",
    "LiveFeed",
    "Publisher",
    "Reason",
    "TopicStats",
    "ensure_group",
    "list_topics",
    "new_id",
    "read_dead",
    "recent",
    "requeue",
    "stable_id",
    "topic_stats",
]
