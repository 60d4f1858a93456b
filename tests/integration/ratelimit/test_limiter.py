"""The limiter against a real durable Valkey: quotas, costs, blocking, usage, keys and TTLs."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from tests.redishelpers import RedisPair
from traderunner.errors import RateLimitedError, RedisError, UserInputError
from traderunner.ratelimit import LimitUsage, Quota, QuotaError, RateLimiter, limiter_from_settings
from traderunner.redisdb.keys import Keys


def _limiter(pair: RedisPair, tmp_path: Path, *quotas: Quota, name: str = "api") -> RateLimiter:
    prefix = pair.settings(tmp_path).redis_prefix
    return RateLimiter(pair.durable.url, name=name, quotas=quotas, prefix=prefix)


def _usage(limiter: RateLimiter) -> dict[str, LimitUsage]:
    return {u.name: u for u in limiter.usage()}


def test_try_acquire_takes_costs_until_the_limit(redis_pair: RedisPair, tmp_path: Path) -> None:
    limiter = _limiter(redis_pair, tmp_path, Quota(5, 60, "minute"))
    assert _usage(limiter)["minute"] == LimitUsage("minute", 60, 5, 0, 5, 0.0)
    assert limiter.try_acquire(2)
    assert limiter.try_acquire(2)
    assert not limiter.try_acquire(2)  # 4 + 2 > 5: refused, nothing taken
    assert limiter.try_acquire(1)
    assert not limiter.try_acquire()
    use = _usage(limiter)["minute"]
    assert (use.used, use.remaining, use.limit) == (5, 0, 5)
    assert 0.0 < use.reset_in_s <= 60.0
    limiter.reset()
    assert _usage(limiter)["minute"].used == 0
    assert limiter.try_acquire(5)


def test_processes_share_one_quota_by_name_and_prefix(
    redis_pair: RedisPair, tmp_path: Path
) -> None:
    settings = redis_pair.settings(tmp_path)
    a, b = (
        RateLimiter(
            redis_pair.durable.url,
            name="api",
            quotas=[Quota(3, 60, "m")],
            prefix=settings.redis_prefix,
        )
        for _ in range(2)
    )
    other = RateLimiter(
        redis_pair.durable.url,
        name="other",
        quotas=[Quota(3, 60, "m")],
        prefix=settings.redis_prefix,
    )
    assert a.try_acquire(2)
    assert not b.try_acquire(2)  # the same quota, seen through another client
    assert b.try_acquire(1)
    assert other.try_acquire(3)  # another limiter name is another quota
    assert _usage(a)["m"].used == _usage(b)["m"].used == 3


def test_acquire_with_a_deadline_raises_with_retry_after(
    redis_pair: RedisPair, tmp_path: Path
) -> None:
    limiter = _limiter(redis_pair, tmp_path, Quota(3, 1, "second"))
    limiter.acquire(3, deadline=0)
    with pytest.raises(RateLimitedError, match="'second' quota") as info:
        limiter.acquire(1, deadline=0)
    assert info.value.retry_after is not None
    assert 0.0 < info.value.retry_after <= 1.0
    assert "\n" not in str(info.value)
    # The window frees within a second: a tiny deadline cannot be met, so it fails at once
    # without sleeping through it; a generous one waits for the expiry and succeeds.
    with pytest.raises(RateLimitedError):
        limiter.acquire(1, deadline=0.0001)
    limiter.acquire(2, deadline=10)
    assert _usage(limiter)["second"].used == 2  # the first three expired, the new two count


def test_blocked_acquire_sleeps_instead_of_polling(redis_pair: RedisPair, tmp_path: Path) -> None:
    limiter = _limiter(redis_pair, tmp_path, Quota(2, 1, "second"))
    server = redis.Redis.from_url(redis_pair.durable.url)
    limiter.acquire(2)
    before = int(server.info("stats")["total_commands_processed"])
    limiter.acquire(2)  # waits about a second for the window to free
    after = int(server.info("stats")["total_commands_processed"])
    # A spinning loop would send thousands of commands; sleeping to the expiry sends a few.
    assert after - before < 20, after - before


def test_impossible_costs_are_user_errors_not_waits(redis_pair: RedisPair, tmp_path: Path) -> None:
    limiter = _limiter(redis_pair, tmp_path, Quota(10, 60, "minute"), Quota(4, 3600, "hour"))
    with pytest.raises(QuotaError, match="cost 5 exceeds the 'hour' quota's limit of 4"):
        limiter.acquire(5)  # deadline None: must not block forever
    with pytest.raises(QuotaError, match="cost 5 exceeds"):
        limiter.try_acquire(5)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(QuotaError, match="cost must be a whole number"):
            limiter.try_acquire(bad)  # type: ignore[arg-type]
    with pytest.raises(QuotaError, match="deadline"):
        limiter.acquire(1, deadline=-1)
    assert issubclass(QuotaError, UserInputError)
    assert _usage(limiter)["minute"].used == 0  # nothing was taken by the refused calls


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, 60, "m"), "limit must be"),
        ((5, 0, "m"), "window_s must be"),
        ((5, 32 * 86400, "m"), "window_s must be"),
        ((5, 60, ""), "quota name"),
        ((5, 60, "a:b"), "quota name"),
        ((5, 60, "x*"), "quota name"),
    ],
)
def test_bad_quotas_are_rejected(args: tuple[int, int, str], match: str) -> None:
    with pytest.raises(QuotaError, match=match):
        Quota(*args)


def test_bad_limiter_definitions_are_rejected(redis_pair: RedisPair) -> None:
    url = redis_pair.durable.url
    with pytest.raises(QuotaError, match="at least one quota"):
        RateLimiter(url, name="x", quotas=[])
    with pytest.raises(QuotaError, match="must differ"):
        RateLimiter(url, name="x", quotas=[Quota(1, 1, "a"), Quota(2, 2, "a")])
    with pytest.raises(QuotaError, match="name"):
        RateLimiter(url, name="a b", quotas=[Quota(1, 1, "a")])
    for bad_url in ("http://127.0.0.1:1/0", "redis://:secret@127.0.0.1:port/0"):
        with pytest.raises(RedisError, match="invalid Redis URL") as info:
            RateLimiter(bad_url, name="x", quotas=[Quota(1, 1, "a")])
        assert "secret" not in str(info.value)


def test_a_refusing_longer_quota_never_lets_the_total_exceed(
    redis_pair: RedisPair, tmp_path: Path
) -> None:
    limiter = _limiter(redis_pair, tmp_path, Quota(10, 60, "minute"), Quota(4, 3600, "hour"))
    assert limiter.try_acquire(3)
    assert not limiter.try_acquire(3)  # the hour quota refuses 3 + 3 > 4
    use = _usage(limiter)
    assert use["hour"].used == 3  # the hour quota never goes past what was granted
    # The shorter quota was taken before the refusal and keeps it: conservative over-count.
    assert use["minute"].used == 6
    assert limiter.try_acquire(1)
    assert not limiter.try_acquire(1)
    assert _usage(limiter)["hour"].used == 4


def test_every_limiter_key_has_a_ttl_within_its_window(
    redis_pair: RedisPair, tmp_path: Path
) -> None:
    settings = redis_pair.settings(tmp_path)
    quotas = [Quota(100, 60, "minute"), Quota(1000, 86400, "day")]
    limiter = RateLimiter(
        redis_pair.durable.url, name="eodhd", quotas=quotas, prefix=settings.redis_prefix
    )
    for cost in (1, 5, 3):
        limiter.acquire(cost)
    limiter.try_acquire(2)
    limiter.usage()
    server = redis.Redis.from_url(redis_pair.durable.url, decode_responses=True)
    found = {key: server.ttl(key) for key in server.scan_iter(match=f"{settings.redis_prefix}*")}
    keys = Keys(settings.redis_prefix)
    assert set(found) == {keys.ratelimit_quota("eodhd", q.name) for q in quotas}
    for key, ttl in found.items():
        window = 60 if key.endswith(":minute") else 86400
        assert 0 < ttl <= window, (key, ttl)
        assert key.startswith(keys.ratelimit("eodhd") + ":")
    assert server.llen(keys.ratelimit_quota("eodhd", "minute")) == 11


def test_limiter_from_settings_uses_the_eodhd_quotas(redis_pair: RedisPair, tmp_path: Path) -> None:
    settings = redis_pair.settings(tmp_path, eodhd_calls_per_minute=7, eodhd_calls_per_day=20)
    limiter = limiter_from_settings(settings)
    assert limiter.name == "eodhd"
    assert [(q.name, q.limit, q.window_s, q.unit) for q in limiter.quotas] == [
        ("minute", 7, 60, "requests"),  # EODHD counts the minute in HTTP requests
        ("day", 20, 86400, "cost"),  # and the day in calls (an intraday request: 5)
    ]
    limiter.acquire(settings.eodhd_intraday_cost)
    assert limiter.try_acquire(settings.eodhd_intraday_cost)  # 2 requests of 7, 10 calls of 20
    use = _usage(limiter)
    assert (use["minute"].used, use["day"].used) == (2, 10)
    # The same settings in another process see the same quota.
    assert _usage(limiter_from_settings(settings))["day"].used == 10
    assert limiter.try_acquire(5) and limiter.try_acquire(5)
    assert not limiter.try_acquire(1)  # the day's 20 calls are taken; the minute had room
    assert "***" in repr(limiter) and redis_pair.durable.password not in repr(limiter)


def test_each_subject_has_its_own_windows(redis_pair: RedisPair, tmp_path: Path) -> None:
    prefix = redis_pair.settings(tmp_path).redis_prefix
    limiter = RateLimiter(
        redis_pair.durable.url, name="login-user", quotas=[Quota(2, 60, "failures")], prefix=prefix
    )
    assert limiter.try_acquire(subject="ana") and limiter.try_acquire(subject="ana")
    assert not limiter.try_acquire(subject="ana")
    assert limiter.try_acquire(subject="bo")  # another subject, its own window
    assert limiter.try_acquire()  # and the limiter's own (subject-less) window is apart
    assert [u.used for u in limiter.usage(subject="ana")] == [2]
    assert [u.used for u in limiter.usage(subject="bo")] == [1]
    client = redis.Redis.from_url(redis_pair.durable.url)
    key = Keys(prefix).ratelimit_subject("login-user", "failures", "ana")
    assert client.llen(key) == 2 and 0 < client.ttl(key) <= 60
    limiter.reset(subject="ana")  # only ana's window
    assert not client.exists(key)
    assert [u.used for u in limiter.usage(subject="bo")] == [1]
    assert limiter.try_acquire(subject="::1")  # an IPv6 address is a subject too
    for bad in ("", "a b", "x" * 129, "ana/1"):
        with pytest.raises(QuotaError, match="subject"):
            limiter.try_acquire(subject=bad)
    client.close()
