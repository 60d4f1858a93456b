"""The System page's read models against real servers: figures, problems, a dead server."""

from __future__ import annotations

import time
from pathlib import Path

from tests.redishelpers import RedisPair, free_port
from traderunner.dashboard.readmodels import system as rm
from traderunner.jobs.app import make_celery
from traderunner.redisdb.connection import connect
from traderunner.redisdb.keys import Keys


def test_a_server_is_judged_by_its_role(redis_pair: RedisPair) -> None:
    durable = connect(redis_pair.durable.url)
    cache = connect(redis_pair.cache.url)
    try:
        ok = rm.redis_status(durable, role="durable", url=redis_pair.durable.url)
        assert ok.reachable and ok.policy == "noeviction" and ok.aof_enabled
        assert ok.problems == () and ok.persistence == "AOF (ok)"
        assert ok.version and ok.uptime_s >= 0 and ok.clients >= 1
        assert "***" in ok.url and redis_pair.durable.password not in ok.url
        # The cache server is fine as a cache, and wrong as a durable store.
        as_cache = rm.redis_status(cache, role="cache", url=redis_pair.cache.url)
        assert as_cache.problems == () and as_cache.maxmemory == 64 * 2**20
        wrong = rm.redis_status(cache, role="durable", url=redis_pair.cache.url)
        assert any("eviction policy 'allkeys-lru'" in p for p in wrong.problems)
        assert any("AOF is off" in p for p in wrong.problems)
    finally:
        durable.close()
        cache.close()


def test_a_dead_server_is_a_value_not_an_exception() -> None:
    url = f"redis://:pw@127.0.0.1:{free_port()}/0"
    client = connect(url, socket_connect_timeout=0.5, retry=None)
    status = rm.redis_status(client, role="durable", url=url)
    assert not status.reachable and status.error
    assert status.problems == (status.error,)
    queues = rm.queue_depths(client, Keys("x:"))
    assert queues.error and queues.total == 0


def test_the_worker_watch_reads_once_for_many_askers_and_stops_when_nobody_asks(
    redis_pair: RedisPair, tmp_path: Path
) -> None:
    settings = redis_pair.settings(tmp_path)
    app = make_celery(settings)
    calls = 0

    def counted() -> object:
        nonlocal calls
        calls += 1
        return app

    watch = rm.WorkerWatch(counted, timeout=0.2, every=0.2, idle_stop=0.5)
    try:
        first = watch.latest()
        assert first is not None and first.workers == () and not first.error  # no worker runs
        for _ in range(5):
            assert watch.latest() is not None
        assert calls <= 2  # askers share the readings: no broadcast of their own
        time.sleep(1.5)  # nobody asks: the thread stops after idle_stop
        stopped_at = calls
        time.sleep(0.6)
        assert calls == stopped_at
        assert watch.latest() is not None and calls >= stopped_at  # asking again restarts it
    finally:
        watch.close()
        app.close()
