"""What ``doctor`` and the dashboard's System page read about the bus, without consuming.

:func:`topic_stats` answers from ``XINFO STREAM``, ``XINFO GROUPS`` and ``XPENDING``: a few
round trips per topic, no scan of entries. :func:`list_topics` finds every topic of this
deployment (a ``SCAN`` of its stream keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import redis

from traderunner.redisdb.keys import Keys


@dataclass(frozen=True, slots=True)
class GroupStats:
    """One consumer group on one topic.

    ``lag``: entries in the stream not yet delivered to the group (None when Redis cannot
    tell, which happens after entries were deleted in the group's unread range).
    ``pending``: delivered and not yet acknowledged (being handled, or left by a consumer
    that died: those are claimed after ``claim_idle``). ``oldest_pending_s``: how long the
    oldest pending entry has waited since its last delivery (None: nothing pending).
    ``trimmed_unread``: entries the stream trimmed before this group read them (lost to it:
    ``bus_stream_maxlen`` is too small for how long its consumers were away), counted while
    the group's position is behind the stream's first entry; 0 when Redis cannot tell.
    """

    topic: str
    group: str
    consumers: int
    lag: int | None
    pending: int
    oldest_pending_s: float | None
    last_delivered_id: str
    trimmed_unread: int = 0


@dataclass(frozen=True, slots=True)
class TopicStats:
    """One topic: its stream's length and ends, its dead letters, and each group reading it."""

    topic: str
    length: int
    first_id: str | None
    last_id: str | None
    dead_letters: int
    groups: tuple[GroupStats, ...]

    def group(self, name: str) -> GroupStats | None:
        return next((g for g in self.groups if g.group == name), None)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _get(row: dict[Any, Any], name: str) -> Any:
    return row.get(name, row.get(name.encode()))


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def group_stats(
    client: redis.Redis,
    keys: Keys,
    topic: str,
    row: dict[Any, Any],
    stream: dict[Any, Any] | None = None,
) -> GroupStats:
    """A :class:`GroupStats` from one ``XINFO GROUPS`` row (plus one ``XPENDING`` if pending);
    with the stream's ``XINFO STREAM`` it also tells how many unread entries were trimmed."""
    name = _text(_get(row, "name"))
    pending = int(_get(row, "pending") or 0)
    oldest: float | None = None
    if pending:
        first = cast(
            list[Any], client.xpending_range(keys.bus_stream(topic), name, "-", "+", count=1)
        )
        if first:
            oldest = int(first[0]["time_since_delivered"]) / 1000.0
    lag = _get(row, "lag")
    last = _text(_get(row, "last-delivered-id"))
    trimmed = 0
    added = None if stream is None else _get(stream, "entries-added")
    head = None if stream is None else _get(stream, "first-entry")
    if added is not None and head and _id_key(last) < _id_key(_text(head[0])):
        # Everything the stream holds is unread; what was added before it and not read by
        # the group was trimmed away unread.
        read = int(_get(row, "entries-read") or 0)
        trimmed = max(0, int(added) - int(_get(stream, "length") or 0) - read)  # type: ignore[arg-type]
    return GroupStats(
        topic=topic,
        group=name,
        consumers=int(_get(row, "consumers") or 0),
        lag=None if lag is None else int(lag),
        pending=pending,
        oldest_pending_s=oldest,
        last_delivered_id=last,
        trimmed_unread=trimmed,
    )


def topic_stats(client: redis.Redis, keys: Keys, topic: str) -> TopicStats:
    """The stream, dead letters and groups of ``topic`` (all zero when nothing was published)."""
    stream = keys.bus_stream(topic)
    pipe = client.pipeline(transaction=False)
    pipe.xlen(keys.bus_dead(topic))
    pipe.exists(stream)
    dead, exists = pipe.execute()
    if not exists:
        return TopicStats(topic, 0, None, None, int(dead), ())
    info = cast(dict[Any, Any], client.xinfo_stream(stream))
    rows = cast(list[dict[Any, Any]], client.xinfo_groups(stream))
    first, last = _get(info, "first-entry"), _get(info, "last-entry")
    return TopicStats(
        topic=topic,
        length=int(_get(info, "length") or 0),
        first_id=_text(first[0]) if first else None,
        last_id=_text(last[0]) if last else None,
        dead_letters=int(dead),
        groups=tuple(group_stats(client, keys, topic, row, info) for row in rows),
    )


def list_topics(client: redis.Redis, keys: Keys) -> list[str]:
    """Every topic with a stream on this deployment (dead-letter streams not counted), sorted."""
    head = keys.bus_stream("")
    found: set[str] = set()
    dead_suffix = keys.bus_dead("").removeprefix(head)
    for key in client.scan_iter(match=head + "*", count=500, _type="STREAM"):
        topic = _text(key).removeprefix(head)
        if topic.endswith(dead_suffix):
            topic = topic.removesuffix(dead_suffix)
        found.add(topic)
    return sorted(found)


def forget_idle_consumers(
    client: redis.Redis, keys: Keys, topic: str, group: str, idle_s: float
) -> list[str]:
    """Delete members of ``group`` that hold no pending entry and were last seen more than
    ``idle_s`` ago (processes that stopped for good under a name not used again); their
    names. A member that is in fact alive is re-created by its next read, so this is safe."""
    stream = keys.bus_stream(topic)
    gone = []
    for row in cast(list[dict[Any, Any]], client.xinfo_consumers(stream, group)):
        if int(_get(row, "pending") or 0) == 0 and int(_get(row, "idle") or 0) > idle_s * 1000:
            name = _text(_get(row, "name"))
            client.xgroup_delconsumer(stream, group, name)
            gone.append(name)
    return gone
