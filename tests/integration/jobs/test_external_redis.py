"""External mode against Debian's redis-server 7 (not Valkey): the job system runs unchanged.

Marked ``external_redis``: it needs /usr/bin/redis-server (Debian's package ``redis-server``)
and, for the refusal test, the Redis this machine pre-starts on 127.0.0.1:6379 with no
persistence.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.jobenv import PLUGINS, SYMBOLS
from tests.jobhelpers import WorkerProcess, seed_candles
from tests.redishelpers import free_port
from traderunner.config import load_settings
from traderunner.domain.jobs import JobState
from traderunner.errors import UnsafeRedisError
from traderunner.jobs import BacktestSpec, JobClient, NoopSpec
from traderunner.redisdb import check_durable, connect
from traderunner.store import Store

pytestmark = pytest.mark.external_redis

REDIS_SERVER = Path("/usr/bin/redis-server")


@pytest.fixture
def debian_redis(tmp_path: Path) -> Iterator[str]:
    if not REDIS_SERVER.exists():
        pytest.fail(
            "this test needs Debian's redis-server 7 (apt-get install redis-server); "
            "deselect with -m 'not external_redis'"
        )
    port = free_port()
    password = uuid.uuid4().hex
    proc = subprocess.Popen(
        [
            str(REDIS_SERVER),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--requirepass",
            password,
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--maxmemory-policy",
            "noeviction",
            "--dir",
            str(tmp_path),
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    assert client.info("server")["redis_version"].startswith("7.")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_jobs_run_on_debian_redis_7(debian_redis: str, tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path / "data",
        redis_url=debian_redis,
        strategy_path=str(PLUGINS),
        store_url=f"sqlite:///{tmp_path / 'store.db'}",
        job_heartbeat_ttl=2,
    )
    assert check_durable(connect(debian_redis), debian_redis) == []
    store = Store.connect(settings.resolved_store_url)
    seed_candles(store, SYMBOLS, days=3)
    worker = WorkerProcess(settings, tmp_path / "logs").start()
    try:
        with JobClient.open(settings, store=store) as client:
            jobs = [client.submit(NoopSpec()), client.submit(BacktestSpec("sma_cross", SYMBOLS))]
            for job in jobs:
                assert client.wait(job.id, timeout=60).state is JobState.SUCCEEDED
            keys = redis.Redis.from_url(debian_redis).keys("*")
            assert keys and all(k.startswith(settings.redis_prefix.encode()) for k in keys)
    finally:
        worker.stop()
        store.close()


def test_the_machines_unpersisted_redis_is_refused_as_durable() -> None:
    url = "redis://127.0.0.1:6379/0"
    client = connect(url)
    info = client.info("persistence")
    assert info["aof_enabled"] == 0  # pre-started with --appendonly no --save ""
    with pytest.raises(UnsafeRedisError, match="persistence is off"):
        check_durable(client, url)
