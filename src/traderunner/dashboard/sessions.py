"""Server-side dashboard sessions: one Redis hash per login, in the durable Redis.

``session:{id}`` (``Keys.session``) holds ``user``, ``admin``, ``created``, ``last_seen``,
``address`` and ``csrf`` (the token Dash's renderer echoes in ``X-CSRFToken``). Its TTL is the
session TTL (``TRADERUNNER_DASHBOARD_SESSION_TTL``, 1 h by default) and is renewed by every
request (sliding expiry) in one atomic script that never recreates an ended session. A session
also ends ``max_age`` seconds after its login however active it is. ``sessions:{user}``
(``Keys.user_sessions``) indexes each user's session ids, so logging out everywhere, a password
change and ``traderunner user remove`` end them all at once.

The browser's cookie holds only the session id, signed (``dashboard/web.py``); nothing about
the user travels in it. This module has no Flask in it: the CLI ends sessions with it too.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import redis

from traderunner.errors import RedisError
from traderunner.redisdb.keys import SESSION_MAX_AGE, SESSION_TTL, Keys
from traderunner.redisdb.scripts import TOUCH_HASH_IF_EXISTS

# 32 random bytes: unguessable, and URL-safe for the cookie.
_ID_BYTES = 32


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One live session, as the hash holds it."""

    id: str
    user: str
    admin: bool
    created: datetime
    last_seen: datetime
    address: str
    csrf: str


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SessionStore:
    """Create, resume and end sessions. ``client`` is the durable Redis (connections are
    passed in); every Redis failure becomes a one-line RedisError."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        ttl: int = SESSION_TTL,
        max_age: int = SESSION_MAX_AGE,
    ) -> None:
        self.redis = client
        self.keys = keys
        self.ttl = int(ttl)
        self.max_age = int(max_age)
        self._touch = client.register_script(TOUCH_HASH_IF_EXISTS)

    def create(self, user: str, *, admin: bool, address: str = "") -> SessionInfo:
        """A new session (a new id, never a reused one) for ``user``."""
        now = _now()
        info = SessionInfo(
            id=secrets.token_urlsafe(_ID_BYTES),
            user=user,
            admin=admin,
            created=now,
            last_seen=now,
            address=address,
            csrf=secrets.token_urlsafe(24),
        )
        key = self.keys.session(info.id)
        index = self.keys.user_sessions(user)
        fields = {
            "user": user,
            "admin": "1" if admin else "0",
            "created": now.isoformat(),
            "last_seen": now.isoformat(),
            "address": address,
            "csrf": info.csrf,
        }
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping=fields)
        pipe.expire(key, self.ttl)
        pipe.sadd(index, info.id)
        # No session outlives max_age + ttl, so neither need the index of its ids.
        pipe.expire(index, self.max_age + self.ttl)
        self._run(pipe.execute, "create a dashboard session")
        return info

    def resume(self, session_id: str) -> SessionInfo | None:
        """The session, its expiry renewed; None when it ended, expired or is too old."""
        key = self.keys.session(session_id)
        now = _now()
        found = self._run(
            lambda: self._touch(keys=[key], args=["last_seen", now.isoformat(), self.ttl]),
            "read a dashboard session",
        )
        if not found:
            return None
        flat = [_text(v) for v in cast(list[Any], found)]
        fields = dict(zip(flat[0::2], flat[1::2], strict=True))
        info = _parse(session_id, fields)
        if info is None or (now - info.created).total_seconds() > self.max_age:
            self.end(session_id, user=fields.get("user"))
            return None
        return info

    def end(self, session_id: str, *, user: str | None = None) -> None:
        """End one session (logout). ``user`` saves a read when the caller knows it."""
        key = self.keys.session(session_id)
        if user is None:
            user = self._run(lambda: self.redis.hget(key, "user"), "end a dashboard session")
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(key)
        if user:
            pipe.srem(self.keys.user_sessions(_text(user)), session_id)
        self._run(pipe.execute, "end a dashboard session")

    def end_user(self, user: str) -> int:
        """End every session of ``user``; returns how many were live."""
        index = self.keys.user_sessions(user)
        ids = self._run(lambda: self.redis.smembers(index), "end the user's sessions")
        if not ids:
            return 0
        pipe = self.redis.pipeline(transaction=True)
        for sid in ids:
            pipe.delete(self.keys.session(_text(sid)))
        pipe.delete(index)
        done = self._run(pipe.execute, "end the user's sessions")
        return sum(int(n) for n in done[:-1])

    def sessions_of(self, user: str) -> list[SessionInfo]:
        """The user's live sessions (ids of expired ones are dropped from the index)."""
        index = self.keys.user_sessions(user)
        ids = sorted(_text(s) for s in self._run(lambda: self.redis.smembers(index), "list"))
        pipe = self.redis.pipeline(transaction=False)
        for sid in ids:
            pipe.hgetall(self.keys.session(sid))
        rows = self._run(pipe.execute, "list the user's sessions") if ids else []
        live: list[SessionInfo] = []
        gone: list[str] = []
        for sid, raw in zip(ids, rows, strict=True):
            info = _parse(sid, {_text(k): _text(v) for k, v in raw.items()}) if raw else None
            if info is None:
                gone.append(sid)
            else:
                live.append(info)
        if gone:
            self._run(lambda: self.redis.srem(index, *gone), "prune the user's sessions")
        return live

    def _run(self, fn: Any, action: str) -> Any:
        try:
            return fn()
        except (redis.RedisError, OSError) as exc:
            raise RedisError(
                f"cannot {action}: the durable Redis failed ({type(exc).__name__}: {exc}); "
                "check that it runs (traderunner redis status) and TRADERUNNER_REDIS_URL"
            ) from None


def _parse(session_id: str, fields: Mapping[str, str]) -> SessionInfo | None:
    try:
        return SessionInfo(
            id=session_id,
            user=fields["user"],
            admin=fields.get("admin") == "1",
            created=datetime.fromisoformat(fields["created"]),
            last_seen=datetime.fromisoformat(fields["last_seen"]),
            address=fields.get("address", ""),
            csrf=fields["csrf"],
        )
    except (KeyError, ValueError):
        return None  # not a hash this code wrote: treat as no session
