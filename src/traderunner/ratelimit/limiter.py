"""A rate limiter shared by every process and machine through the durable Redis.

Each quota ("1000 calls per 60 s", "100000 per day") is an exact **moving window** kept by the
``limits`` library (``RedisStorage``): a Redis list at ``Keys.ratelimit_quota(name, quota)``
holding one timestamp per unit of cost granted, trimmed to the limit. The check and the push
happen in one Lua script, so any number of processes can race on it and no window of the quota's
length ever holds more than ``limit`` units. We call the storage's moving-window methods
(``acquire_entry``, ``get_moving_window``) rather than ``MovingWindowRateLimiter`` because the
latter puts the limit's amount into the key: changing a plan's quota would then start from an
empty window and allow a burst above the real API quota.

Several quotas are taken one after another, shortest window first. When a later quota refuses,
the earlier ones keep the cost they took (there is no refund in a moving window): the limiter
over-counts, never under-counts, so the total can never exceed any limit. Shortest first means
the waste lands on the quota that refills soonest, not on the day's budget.

Every key carries a TTL of its quota's window, refreshed by each grant (limits' script sets it),
so a limiter that stops being used leaves nothing behind. Timestamps are the clients' UTC clocks
(``time.time()``): machines sharing one limiter should run NTP; a clock ``d`` seconds off makes
its grants expire ``d`` seconds early or late for the others. A moving 24 h window is stricter
than a provider's calendar-day quota, never looser.

**Subjects.** A limiter can also limit each *subject* on its own (the dashboard limits failed
logins per user name and per client address): pass ``subject=`` to :meth:`RateLimiter.try_acquire`,
:meth:`~RateLimiter.usage` and :meth:`~RateLimiter.reset`, and that subject gets its own windows at
``Keys.ratelimit_subject(name, quota, subject)``, with the same quotas and guarantees.

**Units.** A quota counts either the cost given to :meth:`RateLimiter.acquire` (``unit="cost"``:
EODHD's daily quota of *calls*, an intraday request costing 5) or HTTP requests
(``unit="requests"``: EODHD's per-minute quota, one per request whatever it costs). A request
that failed costs the provider no calls: :meth:`RateLimiter.refund` gives its cost back to the
cost quotas (the newest grants are dropped; the request still counts as a request).

**Spent.** When the provider itself says a quota is used up (EODHD's HTTP 402: the day's calls
are spent, whatever our window says, e.g. another client of the same account used them),
:meth:`RateLimiter.mark_spent` records the moment it resets at ``Keys.quota_spent(name, quota)``
(expiring then). Until that moment every process's :meth:`~RateLimiter.acquire` refuses at once
with QuotaSpentError (or sleeps until the reset when its deadline allows that long).

If the durable Redis loses its data (a restart without AOF), the windows restart empty: work
resumes at once, at the cost of possibly exceeding the provider's quota once. With AOF
(``appendfsync everysec``) at most the last second of grants is forgotten.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis
from limits.storage import RedisStorage
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from traderunner.errors import QuotaError, QuotaSpentError, RateLimitedError, RedisError
from traderunner.redisdb.connection import mask_url, resolve_urls
from traderunner.redisdb.keys import RATELIMIT_MAX_TTL, Keys

if TYPE_CHECKING:
    from traderunner.config import Settings

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# Subjects are user names and client addresses (IPv6 has colons), never free text.
_SUBJECT = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
# Small random delay added to each wait so the processes woken by one expiry do not all hit
# Redis in the same instant; small against any window, so it barely delays a grant.
_JITTER_S = 0.005


@dataclass(frozen=True, slots=True)
class Quota:
    """At most ``limit`` units of cost in any ``window_s`` seconds; ``name`` labels its key.

    ``limit`` >= 1; ``window_s`` from 1 s to ``RATELIMIT_MAX_TTL`` (31 days); ``name`` is 1-64
    characters of letters, digits, ``_ . -``; ``unit`` is ``cost`` (a grant takes the cost asked
    for) or ``requests`` (a grant takes 1, whatever the cost). Raises QuotaError otherwise.
    """

    limit: int
    window_s: int
    name: str
    unit: str = "cost"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise QuotaError(
                f"quota name {self.name!r} is invalid: use 1-64 letters, digits, '_', '.' or '-'"
            )
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise QuotaError(
                f"quota {self.name!r}: limit must be a whole number >= 1, not {self.limit!r}"
            )
        if self.unit not in ("cost", "requests"):
            raise QuotaError(
                f"quota {self.name!r}: unit must be 'cost' or 'requests', not {self.unit!r}"
            )
        if (
            isinstance(self.window_s, bool)
            or not isinstance(self.window_s, int)
            or not 1 <= self.window_s <= RATELIMIT_MAX_TTL
        ):
            raise QuotaError(
                f"quota {self.name!r}: window_s must be whole seconds from 1 to "
                f"{RATELIMIT_MAX_TTL}, not {self.window_s!r}"
            )


@dataclass(frozen=True, slots=True)
class LimitUsage:
    """One quota's state right now, for the system page.

    ``used + remaining == limit``; ``reset_in_s`` is the time until the oldest grant in the
    window expires and frees its units (0.0 when nothing is used).
    """

    name: str
    window_s: int
    limit: int
    used: int
    remaining: int
    reset_in_s: float
    spent_until: float | None = None  # Unix time the provider said this quota resets


class RateLimiter:
    """Cluster-wide limiter ``name`` with one or more quotas, kept in the Redis at ``redis_url``.

    Every process that builds a limiter with the same URL, prefix and name shares the same
    quotas. The connection is made lazily on first use; nothing here blocks forever: a cost no
    quota can ever grant raises QuotaError, an unreachable Redis raises RedisError within a few
    seconds. Thread-safe (redis-py's connection pool).
    """

    def __init__(
        self,
        redis_url: str,
        *,
        name: str,
        quotas: Sequence[Quota],
        prefix: str = "tr:",
        socket_timeout: float = 3.0,
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise QuotaError(
                f"rate limiter name {name!r} is invalid: use 1-64 letters, digits, '_', '.' or '-'"
            )
        quotas = tuple(quotas)
        if not quotas:
            raise QuotaError(f"rate limiter {name!r} needs at least one quota")
        names = [q.name for q in quotas]
        if len(set(names)) != len(names):
            raise QuotaError(f"rate limiter {name!r}: quota names must differ, got {names}")
        self.name = name
        self.quotas: tuple[Quota, ...] = quotas
        # Shortest window first: see the module docstring (over-counting lands there).
        self._order = tuple(sorted(quotas, key=lambda q: (q.window_s, q.limit)))
        self._url = redis_url
        keys = Keys(prefix)
        options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": min(socket_timeout, 2.0),
            # Rides over a restart or a dropped connection; a dead server fails in ~1 s. Not
            # on timeouts: a frozen server fails after one socket_timeout, and a script that
            # timed out may have run, so repeating it could take the cost twice.
            "retry": Retry(
                ExponentialBackoff(cap=0.5, base=0.05), 3, supported_errors=(redis.ConnectionError,)
            ),
            "client_name": f"traderunner-ratelimit-{name}",
        }
        url = (
            "redis+unix://" + redis_url[len("unix://") :]
            if redis_url.startswith("unix://")
            else redis_url
        )
        try:
            self._storage = RedisStorage(url, key_prefix=keys.ratelimit(name), **options)
        except ValueError as exc:
            raise RedisError(
                f"rate limiter {name!r}: invalid Redis URL {mask_url(redis_url)} ({exc}); fix "
                "TRADERUNNER_REDIS_URL"
            ) from None
        self._client: redis.Redis = self._storage.storage
        self._keys = {q.name: keys.ratelimit_quota(name, q.name) for q in quotas}
        self._spent_keys = {q.name: keys.quota_spent(name, q.name) for q in quotas}
        for q in quotas:
            # The key must be the one keys.py documents; this trips if limits changes format.
            if self._storage.prefixed_key(q.name) != self._keys[q.name]:  # pragma: no cover
                raise RuntimeError("limits' RedisStorage key format changed; update ratelimit")

    def __repr__(self) -> str:
        quotas = ", ".join(f"{q.limit}/{q.window_s}s {q.name}" for q in self.quotas)
        return f"RateLimiter({self.name!r}, [{quotas}], {mask_url(self._url)})"

    def try_acquire(self, cost: int = 1, *, subject: str | None = None) -> bool:
        """Take ``cost`` from every quota now, or nothing from the later ones; never blocks.

        True when every quota granted it. False when one refused (shorter quotas taken before
        the refusing one keep the cost: conservative). With ``subject``, that subject's own
        windows are used (1-128 letters, digits, ``_ . : -``). QuotaError for a cost below 1 or
        above a quota's limit, or a bad subject; RedisError when Redis fails.
        """
        self._check_cost(cost)
        return self._take(cost, self._check_subject(subject)) is None

    def acquire(self, cost: int = 1, deadline: float | None = None) -> None:
        """Take ``cost`` from every quota, sleeping until the earliest expiry while refused.

        ``deadline`` is seconds from now (None: wait as long as it takes; 0: one attempt).
        When the earliest moment the request could succeed lies past the deadline, raises
        RateLimitedError at once (no pointless sleep) with ``retry_after`` = seconds until
        then (a lower bound). QuotaError for an impossible cost; RedisError when Redis fails.
        """
        self._check_cost(cost)
        if deadline is not None and (math.isnan(deadline) or deadline < 0):
            raise QuotaError(f"deadline must be >= 0 seconds or None, not {deadline!r}")
        end = None if deadline is None else time.monotonic() + deadline
        while True:
            self._wait_unless_spent(end)
            refused = self._take(cost)
            if refused is None:
                return
            wait = self._wait_for(refused, cost)
            if end is not None and time.monotonic() + wait > end:
                raise RateLimitedError(
                    f"rate limit {self.name!r}: the {refused.name!r} quota ({refused.limit} "
                    f"per {refused.window_s} s) has no room for cost {cost}; it could succeed "
                    f"in {wait:.2f} s: wait and retry, or allow a longer deadline",
                    retry_after=wait,
                )
            log.debug("rate limit %s: %s quota full, waiting %.3f s", self.name, refused.name, wait)
            time.sleep(wait + random.uniform(0, _JITTER_S))

    def refund(self, cost: int) -> None:
        """Give ``cost`` back to every ``cost`` quota: the request it paid for failed.

        The provider charges nothing for a failed request. Drops the window's newest ``cost``
        grants (LPOP; limits pushes grants at the head). Request quotas keep their grant.
        """
        self._check_cost(cost)
        for q in self.quotas:
            if q.unit == "cost":
                self._call(self._client.lpop, self._keys[q.name], cost)

    def mark_spent(self, quota: str, resets_at: float) -> None:
        """Record that the provider refuses ``quota`` until ``resets_at`` (Unix s) for everyone."""
        if quota not in self._spent_keys:
            raise QuotaError(f"rate limit {self.name!r} has no quota {quota!r}")
        ttl = max(1, math.ceil(resets_at - time.time()))
        key, value = self._spent_keys[quota], repr(float(resets_at))
        self._call(functools.partial(self._client.set, key, value, ex=ttl))

    def spent(self) -> dict[str, float]:
        """Quotas the provider said are spent, with the Unix time each resets (future only)."""
        names = list(self._spent_keys)
        values = self._call(self._client.mget, [self._spent_keys[n] for n in names])
        now = time.time()
        out: dict[str, float] = {}
        for name, raw in zip(names, values, strict=True):
            try:
                until = float(raw) if raw is not None else None
            except (TypeError, ValueError):
                until = None
            if until is not None and until > now:
                out[name] = until
        return out

    def usage(self, *, subject: str | None = None) -> list[LimitUsage]:
        """Each quota's use right now (``subject``'s own, if given), in the order given."""
        subject = self._check_subject(subject)
        spent = self.spent() if subject is None else {}
        out: list[LimitUsage] = []
        for q in self.quotas:
            start, count = self._call(
                self._storage.get_moving_window, _entry(q, subject), q.limit, q.window_s
            )
            used = min(int(count), q.limit)
            reset_in = max(0.0, start + q.window_s - time.time()) if used else 0.0
            out.append(
                LimitUsage(
                    q.name, q.window_s, q.limit, used, q.limit - used, reset_in, spent.get(q.name)
                )
            )
        return out

    def reset(self, *, subject: str | None = None) -> None:
        """Forget every grant of this limiter, or of ``subject`` only (a user who logged in)."""
        subject = self._check_subject(subject)
        if subject is None:
            self._call(self._client.delete, *self._keys.values(), *self._spent_keys.values())
            return
        self._call(
            self._client.delete,
            *(self._storage.prefixed_key(_entry(q, subject)) for q in self.quotas),
        )

    def close(self) -> None:
        """Drop the Redis connections (the limiter reconnects if used again)."""
        with contextlib.suppress(redis.RedisError, OSError):
            self._client.close()

    # -- internals --------------------------------------------------------------------------

    def _check_cost(self, cost: int) -> None:
        if isinstance(cost, bool) or not isinstance(cost, int) or cost < 1:
            raise QuotaError(
                f"rate limit {self.name!r}: cost must be a whole number >= 1, not {cost!r}"
            )
        for q in self.quotas:
            if _units(q, cost) > q.limit:
                raise QuotaError(
                    f"rate limit {self.name!r}: cost {cost} exceeds the {q.name!r} quota's "
                    f"limit of {q.limit} per {q.window_s} s, so it could never be granted; "
                    "split the request or raise the quota"
                )

    def _check_subject(self, subject: str | None) -> str | None:
        if subject is None:
            return None
        if not isinstance(subject, str) or not _SUBJECT.match(subject):
            raise QuotaError(
                f"rate limit {self.name!r}: subject {subject!r} is invalid: use 1-128 letters, "
                "digits, '_', '.', ':' or '-'"
            )
        return subject

    def _take(self, cost: int, subject: str | None = None) -> Quota | None:
        """Take ``cost`` from each quota in order; the first one that refuses, or None."""
        for q in self._order:
            entry = _entry(q, subject)
            units = _units(q, cost)
            if not self._call(self._storage.acquire_entry, entry, q.limit, q.window_s, units):
                return q
        return None

    def _wait_unless_spent(self, end: float | None) -> None:
        """Sleep until a spent quota resets if ``end`` allows, else raise QuotaSpentError."""
        spent = self.spent()
        if not spent:
            return
        quota, until = max(spent.items(), key=lambda item: item[1])
        wait = until - time.time()
        if end is not None and time.monotonic() + wait > end:
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(until))
            raise QuotaSpentError(
                f"rate limit {self.name!r}: the provider says the {quota!r} quota is spent "
                f"until {when}: wait for the reset (a resumed fetch goes on from where it "
                "stopped), or raise the plan's limit",
                resets_at=until,
            )
        log.info(
            "rate limit %s: %s quota spent, waiting %.0f s for its reset", self.name, quota, wait
        )
        time.sleep(max(0.0, wait))

    def _wait_for(self, quota: Quota, cost: int) -> float:
        """Seconds until ``quota`` frees room (its oldest grant expires); 0 if it has room."""
        start, count = self._call(
            self._storage.get_moving_window, quota.name, quota.limit, quota.window_s
        )
        if int(count) + _units(quota, cost) <= quota.limit:
            return 0.0  # another process's grant expired meanwhile: retry now
        return max(0.0, start + quota.window_s - time.time())

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except (redis.RedisError, OSError) as exc:
            raise RedisError(
                f"rate limiter {self.name!r}: the durable Redis at {mask_url(self._url)} "
                f"failed ({type(exc).__name__}: {exc}); check that it runs (traderunner redis "
                "status) and TRADERUNNER_REDIS_URL"
            ) from None


def _units(quota: Quota, cost: int) -> int:
    """What a grant of ``cost`` takes from ``quota``: the cost, or 1 for a request quota."""
    return cost if quota.unit == "cost" else 1


def _entry(quota: Quota, subject: str | None) -> str:
    """The storage key (after the limiter's prefix) of ``quota``, or of its ``subject``'s window."""
    return quota.name if subject is None else f"{quota.name}:{subject}"


def limiter_from_settings(settings: Settings, name: str = "eodhd") -> RateLimiter:
    """The EODHD limiter: per-minute and per-day quotas from ``settings``, on the durable Redis.

    EODHD counts the minute in HTTP requests (1,000 a minute) and the day in calls (an
    intraday request costs 5, an end-of-day request 1), so the minute quota is a request
    quota and the day quota a cost quota. Every process built from the same settings shares
    these quotas.
    """
    url = resolve_urls(settings).durable
    quotas = [
        Quota(settings.eodhd_calls_per_minute, 60, "minute", unit="requests"),
        Quota(settings.eodhd_calls_per_day, 86_400, "day", unit="cost"),
    ]
    return RateLimiter(url, name=name, quotas=quotas, prefix=settings.redis_prefix)
