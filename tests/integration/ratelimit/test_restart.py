"""The limiter and a durable Redis that dies: a clear RedisError, then recovery, never a lock-out.

Each test starts its own Valkey pair (tests.redishelpers.start_pair) because it SIGKILLs it.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redishelpers import RedisPair, start_pair
from traderunner.errors import RedisError
from traderunner.ratelimit import Quota, RateLimiter


def _kill(pair: RedisPair) -> None:
    pid = pair.durable.status().pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    while pair.durable.status().running:
        time.sleep(0.05)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[RedisPair]:
    pair = start_pair(tmp_path / "valkey")
    yield pair
    pair.durable.stop()
    pair.cache.stop()


@pytest.mark.timeout(60)  # "raises, not hangs": a hang fails here instead of stalling the run
def test_dead_redis_raises_a_clear_error_and_restart_resumes(pair: RedisPair) -> None:
    limiter = RateLimiter(pair.durable.url, name="api", quotas=[Quota(4, 60, "minute")])
    assert limiter.try_acquire(3)
    time.sleep(1.2)  # appendfsync everysec: let the grant reach the AOF
    _kill(pair)
    for call in (lambda: limiter.acquire(1), lambda: limiter.try_acquire(1), limiter.usage):
        with pytest.raises(RedisError, match="rate limiter 'api': the durable Redis") as info:
            call()
        message = str(info.value)
        assert "\n" not in message and "traderunner redis status" in message
        assert pair.durable.password not in message and "***" in message
    pair.durable.start()  # same port and folder: the AOF is replayed
    # The same limiter object reconnects; the grant made before the crash still counts.
    assert [u.used for u in limiter.usage()] == [3]
    assert limiter.try_acquire(1)
    assert not limiter.try_acquire(1)


@pytest.mark.timeout(60)
def test_restart_that_lost_every_key_does_not_lock_anyone_out(pair: RedisPair) -> None:
    limiter = RateLimiter(
        pair.durable.url, name="api", quotas=[Quota(5, 60, "minute"), Quota(8, 86400, "day")]
    )
    assert limiter.try_acquire(5)
    assert not limiter.try_acquire(1)
    _kill(pair)
    # The server comes back with nothing: no AOF, no snapshot.
    shutil.rmtree(pair.durable.directory / "appendonlydir", ignore_errors=True)
    (pair.durable.directory / "dump.rdb").unlink(missing_ok=True)
    pair.durable.start()
    assert [u.used for u in limiter.usage()] == [0, 0]
    limiter.acquire(5, deadline=0)  # empty windows: granted at once
    assert [u.used for u in limiter.usage()] == [5, 5]
