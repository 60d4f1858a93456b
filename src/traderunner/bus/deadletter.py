"""The dead-letter stream of a topic: entries no consumer could use, with the reason.

A consumer moves an entry here (``XADD`` to ``bus:{topic}:dead`` and ``XACK`` of the original,
in one ``MULTI``) when it cannot be decoded (``bad_json``, ``bad_envelope``), is not for this
reader (``wrong_topic``, ``unknown_type``, ``wrong_version``), made the handler raise on every
one of ``max_deliveries`` deliveries (``handler_failed``), or was delivered that many times
without ever being acknowledged (``undeliverable``: its consumers kept dying). The original
entry's fields are kept verbatim, so :func:`requeue` can send it again once the cause is fixed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import redis

from traderunner.redisdb.keys import BUS_STREAM_MAXLEN, Keys


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-lettered entry (what ``doctor`` and the System page list)."""

    dead_id: str  # its id in the dead-letter stream
    topic: str
    entry_id: str  # the original entry's id in the topic's stream
    group: str
    consumer: str
    reason: str
    detail: str
    deliveries: int
    ts_ns: int  # when it was dead-lettered
    entry: Mapping[str, str]  # the original entry's fields (``envelope``: its JSON)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


@dataclass(frozen=True, slots=True)
class DeadLetterOf:
    """The entry a consumer gives up on, and who gave up."""

    topic: str
    entry_id: str
    entry: Mapping[Any, Any]  # its fields as read (bytes or str)
    group: str
    consumer: str
    deliveries: int


def move_to_dead(
    client: redis.Redis, keys: Keys, letter: DeadLetterOf, reason: str, detail: str, maxlen: int
) -> None:
    """Add the dead letter and acknowledge the original, atomically (``MULTI``).

    Bytes that are not UTF-8 are kept as ``\\x..`` escapes; the detail is cut at 2,000
    characters.
    """
    fields = {
        "topic": letter.topic,
        "entry_id": letter.entry_id,
        "entry": json.dumps(
            {_text(k): _text(v) for k, v in letter.entry.items()}, ensure_ascii=False
        ),
        "group": letter.group,
        "consumer": letter.consumer,
        "reason": reason,
        "detail": detail[:2000],
        "deliveries": str(letter.deliveries),
        "ts_ns": str(time.time_ns()),
    }
    pipe = client.pipeline(transaction=True)
    pipe.xadd(keys.bus_dead(letter.topic), fields, maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
    pipe.xack(keys.bus_stream(letter.topic), letter.group, letter.entry_id)
    pipe.execute()


def _parse(dead_id: str, fields: Mapping[Any, Any]) -> DeadLetter:
    f = {_text(k): _text(v) for k, v in fields.items()}
    try:
        entry = json.loads(f.get("entry", "{}"))
    except ValueError:
        entry = {}
    return DeadLetter(
        dead_id=dead_id,
        topic=f.get("topic", ""),
        entry_id=f.get("entry_id", ""),
        group=f.get("group", ""),
        consumer=f.get("consumer", ""),
        reason=f.get("reason", ""),
        detail=f.get("detail", ""),
        deliveries=int(f.get("deliveries", "0") or 0),
        ts_ns=int(f.get("ts_ns", "0") or 0),
        entry=entry if isinstance(entry, dict) else {},
    )


def read_dead(client: redis.Redis, keys: Keys, topic: str, count: int = 100) -> list[DeadLetter]:
    """The newest ``count`` dead letters of ``topic``, newest first."""
    rows = cast(list[Any], client.xrevrange(keys.bus_dead(topic), count=count))
    return [_parse(_text(i), fields) for i, fields in rows]


def requeue(
    client: redis.Redis,
    keys: Keys,
    topic: str,
    dead_id: str,
    *,
    maxlen: int = BUS_STREAM_MAXLEN,
) -> str | None:
    """Send a dead letter's original entry to its topic again and drop the dead letter.

    Returns the new stream entry id, or None when no dead letter has that id. The envelope
    keeps its id, so a handler that is idempotent by id still sees it once in effect.
    """
    dead = keys.bus_dead(topic)
    rows = cast(list[Any], client.xrange(dead, min=dead_id, max=dead_id))
    if not rows:
        return None
    letter = _parse(_text(rows[0][0]), rows[0][1])
    pipe = client.pipeline(transaction=True)
    pipe.xadd(
        keys.bus_stream(topic),
        dict(letter.entry),  # type: ignore[arg-type]
        maxlen=maxlen,
        approximate=True,
    )
    pipe.xdel(dead, dead_id)
    new_id, _ = pipe.execute()
    return _text(new_id)
