"""The one message envelope of the bus, its JSON wire form, and sortable unique ids.

Every message on every topic is an :class:`Envelope`::

    {"topic": "signals", "type": "signal", "v": 1, "id": "0190...", "ts_ns": 17..., "payload": {}}

* ``topic``   the topic it was published on (a stream entry must carry its own stream's topic);
* ``type``    what the payload is (``signal``, ``candle``...); a topic may carry several types;
* ``v``       the schema version of that type's payload, an int >= 1: bump it on any change a
  reader must know about, and let readers list the versions they understand;
* ``id``      unique per message and the **idempotency key** of whatever the message causes (the
  trader's order); :func:`new_id` makes a UUIDv7 (time-ordered), and a publisher that may send
  the same message twice after a crash gives a deterministic id instead (:func:`stable_id`);
* ``ts_ns``   when it was created, Unix nanoseconds UTC;
* ``payload`` a JSON object.

JSON only, never pickle. Encoding refuses what strict JSON cannot hold (NaN, infinities, sets,
objects) with :class:`~traderunner.errors.MessageError`; decoding raises the same error with a
``reason`` a consumer writes into the dead-letter stream: ``bad_json`` (not UTF-8 JSON),
``bad_envelope`` (not an object with the six fields of the right types), and, when the reader
says what it expects, ``wrong_topic``, ``unknown_type`` and ``wrong_version``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from traderunner.errors import MessageError

#: Longest id accepted (a UUID is 36 characters; room for a caller's own scheme).
MAX_ID_LENGTH = 128


class Reason(StrEnum):
    """Why an entry went to the dead-letter stream (``MessageError.reason`` for the first five)."""

    BAD_JSON = "bad_json"
    BAD_ENVELOPE = "bad_envelope"
    WRONG_TOPIC = "wrong_topic"
    UNKNOWN_TYPE = "unknown_type"
    WRONG_VERSION = "wrong_version"
    HANDLER_FAILED = "handler_failed"  # the handler raised on every one of N deliveries
    UNDELIVERABLE = "undeliverable"  # delivered N times, never acked: its consumers kept dying


@dataclass(frozen=True, slots=True)
class Envelope:
    """One bus message. Treat ``payload`` as read-only: envelopes are shared values."""

    topic: str
    type: str
    v: int
    id: str
    ts_ns: int
    payload: Mapping[str, Any]

    @classmethod
    def new(
        cls,
        topic: str,
        type: str,
        payload: Mapping[str, Any],
        *,
        v: int = 1,
        id: str | None = None,
        ts_ns: int | None = None,
    ) -> Envelope:
        """An envelope stamped now, with a fresh UUIDv7 unless ``id`` is given."""
        return cls(
            topic,
            type,
            v,
            id if id is not None else new_id(),
            ts_ns if ts_ns is not None else time.time_ns(),
            payload,
        )

    def encode(self) -> str:
        """The envelope as compact strict JSON; MessageError if the payload is not JSON-able."""
        try:
            return json.dumps(
                {
                    "topic": self.topic,
                    "type": self.type,
                    "v": self.v,
                    "id": self.id,
                    "ts_ns": self.ts_ns,
                    "payload": self.payload,
                },
                separators=(",", ":"),
                ensure_ascii=False,
                allow_nan=False,
            )
        except (TypeError, ValueError) as exc:
            raise MessageError(
                Reason.BAD_JSON,
                f"{self.type} message {self.id} on {self.topic!r} cannot be sent as JSON ({exc}): "
                "give the payload only str, int, finite float, bool, None, lists and dicts",
            ) from None

    @classmethod
    def decode(
        cls,
        raw: str | bytes,
        *,
        topic: str | None = None,
        accept: Mapping[str, Collection[int]] | None = None,
    ) -> Envelope:
        """Parse and check one wire form; MessageError (with its ``reason``) when unusable.

        ``topic``: the topic it must carry (a stream's entries carry their stream's).
        ``accept``: the types the reader understands, each with its versions
        (``{"signal": {1}}``); any other type or version is refused.
        """
        try:
            text = raw.decode() if isinstance(raw, bytes) else raw
            data = json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            raise MessageError(Reason.BAD_JSON, f"not JSON: {exc}") from None
        envelope = _from_dict(data)
        envelope.check(topic=topic, accept=accept)
        return envelope

    def check(
        self, *, topic: str | None = None, accept: Mapping[str, Collection[int]] | None = None
    ) -> None:
        """MessageError unless this envelope is on ``topic`` and of a type/version in ``accept``."""
        if topic is not None and self.topic != topic:
            raise MessageError(
                Reason.WRONG_TOPIC,
                f"message {self.id} says topic {self.topic!r}, read on {topic!r}",
            )
        if accept is None:
            return
        versions = accept.get(self.type)
        if versions is None:
            raise MessageError(
                Reason.UNKNOWN_TYPE,
                f"message {self.id} has type {self.type!r}; this reader knows "
                f"{', '.join(sorted(accept)) or 'none'}",
            )
        if self.v not in versions:
            raise MessageError(
                Reason.WRONG_VERSION,
                f"{self.type} message {self.id} is version {self.v}; this reader knows "
                f"{', '.join(str(v) for v in sorted(versions))}",
            )


def _from_dict(data: Any) -> Envelope:
    if not isinstance(data, dict):
        raise MessageError(
            Reason.BAD_ENVELOPE, f"envelope is a JSON {type(data).__name__}, not an object"
        )
    missing = [f for f in ("topic", "type", "v", "id", "ts_ns", "payload") if f not in data]
    if missing:
        raise MessageError(Reason.BAD_ENVELOPE, f"envelope lacks {', '.join(missing)}")
    topic, kind, v, ident, ts_ns, payload = (
        data["topic"],
        data["type"],
        data["v"],
        data["id"],
        data["ts_ns"],
        data["payload"],
    )
    problems = []
    if not isinstance(topic, str) or not topic:
        problems.append("topic must be a non-empty string")
    if not isinstance(kind, str) or not kind:
        problems.append("type must be a non-empty string")
    if not _is_int(v) or v < 1:
        problems.append("v must be an integer >= 1")
    if not isinstance(ident, str) or not ident or len(ident) > MAX_ID_LENGTH:
        problems.append(f"id must be a string of 1 to {MAX_ID_LENGTH} characters")
    if not _is_int(ts_ns) or ts_ns < 0:
        problems.append("ts_ns must be an integer >= 0")
    if not isinstance(payload, dict):
        problems.append("payload must be an object")
    if problems:
        raise MessageError(Reason.BAD_ENVELOPE, "; ".join(problems))
    return Envelope(topic, kind, v, ident, ts_ns, payload)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Uuid7:
    """UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then a 12-bit counter, then 62 random bits.

    Strictly increasing within a process: ids made in the same millisecond take the next
    counter value (starting from a random one below 2048), and a counter that overflows or a
    clock that steps back borrows the next millisecond. Across processes, ids sort by time.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ms = 0
        self._counter = 0

    def __call__(self) -> str:
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms > self._ms:
                self._ms, self._counter = ms, int.from_bytes(os.urandom(2)) & 0x7FF
            else:
                self._counter += 1
                if self._counter > 0xFFF:
                    self._ms, self._counter = self._ms + 1, 0
            ms, counter = self._ms, self._counter
        rand = int.from_bytes(os.urandom(8)) & ((1 << 62) - 1)
        value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand
        return str(uuid.UUID(int=value))


#: A new time-ordered unique id (a UUIDv7 string); thread-safe.
new_id = _Uuid7()


def stable_id(*parts: object) -> str:
    """A deterministic id from ``parts`` (a UUIDv8 of their SHA-256), for messages that a
    restarted publisher may send again: the same strategy, symbol and bar give the same id, so
    the consumer's idempotency key recognises the repeat."""
    digest = bytearray(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80  # version 8 (custom)
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 9562 variant
    return str(uuid.UUID(bytes=bytes(digest)))
