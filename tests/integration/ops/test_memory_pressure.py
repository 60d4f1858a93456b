"""Memory pressure on real servers.

* The cache server is filled far past its ``maxmemory`` with real candle series (read through
  the cache from the store) while jobs run and signals flow on the durable server: the cache
  evicts, the durable server evicts nothing, every job succeeds and every signal arrives.
* The durable server is filled to its ``maxmemory`` (noeviction): a submission fails loudly
  with one clear error and leaves nothing behind (no job row, no hash, no message); once memory
  is freed the same submission goes through.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from tests.clihelpers import run_here
from tests.integration.bus.helpers import FAST, Recorder
from tests.jobhelpers import WorkerProcess, seed_candles, wait_all
from tests.redishelpers import free_port
from traderunner.bus import Consumer, Envelope, Publisher
from traderunner.cache import MarketCache
from traderunner.config import load_settings
from traderunner.domain.jobs import JobState
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import RedisFullError
from traderunner.jobs import BacktestSpec, JobClient, SweepSpec
from traderunner.redisdb.connection import connect
from traderunner.redisdb.embedded import EmbeddedServer
from traderunner.redisdb.keys import Keys
from traderunner.store import Store

pytestmark = pytest.mark.slow

SYMBOLS = tuple(f"S{i:02d}" for i in range(12))


def _info(client: redis.Redis, section: str) -> dict[str, Any]:
    return cast(dict[str, Any], client.info(section))


def test_cache_evicts_under_pressure_and_nothing_durable_is_lost(tmp_path: Path) -> None:
    password = uuid.uuid4().hex
    durable = EmbeddedServer("durable", "127.0.0.1", free_port(), tmp_path / "d", password)
    cache = EmbeddedServer(
        "cache", "127.0.0.1", free_port(), tmp_path / "c", password, maxmemory="2mb"
    )
    durable.start()
    cache.start()
    try:
        prefix = f"t{uuid.uuid4().hex[:6]}:"
        settings = load_settings(
            data_dir=tmp_path / "data",
            redis_url=durable.url,
            cache_url=cache.url,
            redis_prefix=prefix,
            store_url=f"sqlite:///{tmp_path / 'store.db'}",
            job_heartbeat_ttl=2,
            reconcile_interval=0.5,
        )
        store = Store.connect(settings.resolved_store_url)
        seed_candles(store, SYMBOLS, days=120)  # ~9,400 bars each: ~5 MB of series against 2 MB
        worker = WorkerProcess(settings, tmp_path / "logs", concurrency=1).start()
        client = JobClient.open(settings, store=store)
        cache_client = connect(cache.url, decode=False)
        durable_client = connect(durable.url)
        keys = Keys(prefix)
        stop = threading.Event()
        loaded: list[int] = []

        def fill() -> None:
            reads = MarketCache(cache_client, keys, store, local=False)
            while not stop.is_set():
                for symbol in SYMBOLS:
                    loaded.append(len(reads.series(symbol, Timeframe.M5)))
            reads.close()

        filler = threading.Thread(target=fill, daemon=True)
        filler.start()
        try:
            jobs = [
                client.submit(BacktestSpec("sma_cross", (s,), "M5", params={"fast": 5, "slow": 20}))
                for s in SYMBOLS[:6]
            ]
            jobs.append(
                client.submit(
                    SweepSpec(
                        "sma_cross",
                        ("S00",),
                        {"fast": [3, 5], "slow": [10, 20]},
                        "M5",
                        chunk_size=2,
                    )
                )
            )
            publisher = Publisher(connect(durable.url), keys, FAST)
            sent = [Envelope.new("signals", "signal", {"n": i}) for i in range(300)]
            recorder = Recorder()
            consumer = Consumer(
                connect(durable.url),
                keys,
                group="trader",
                name="t1",
                topics=["signals"],
                handler=recorder,
                accept={"signal": {1}},
                options=FAST,
                start="0",
            )
            for i, envelope in enumerate(sent):
                publisher.publish(envelope)
                if i % 50 == 0:
                    consumer.poll(block=0.01)
            deadline = time.monotonic() + 30
            while len(recorder.seen) < len(sent):
                assert time.monotonic() < deadline
                consumer.poll(block=0.1)
            states = wait_all(client, [j.id for j in jobs], timeout=240, worker=worker)
            deadline = time.monotonic() + 60
            while int(_info(cache_client, "stats")["evicted_keys"]) == 0:
                assert time.monotonic() < deadline, "the cache never had to evict"
                time.sleep(0.2)
        finally:
            stop.set()
            filler.join(30)
        assert set(states.values()) == {JobState.SUCCEEDED}, states
        assert recorder.ids == [e.id for e in sent]  # every signal, once, in order
        assert consumer.stats()[0].pending == 0
        memory = _info(cache_client, "memory")
        assert int(memory["used_memory"]) <= int(memory["maxmemory"]) * 1.1
        assert int(_info(cache_client, "stats")["evicted_keys"]) > 0
        assert int(_info(durable_client, "stats")["evicted_keys"]) == 0
        assert len(loaded) > len(SYMBOLS) and min(loaded) > 9_000  # whole series were read
        consumer.close()
        client.close()
        worker.stop()
        store.close()
    finally:
        durable.stop()
        cache.stop()


def test_a_full_durable_server_refuses_submissions_cleanly(tmp_path: Path) -> None:
    password = uuid.uuid4().hex
    durable = EmbeddedServer("durable", "127.0.0.1", free_port(), tmp_path / "d", password)
    cache = EmbeddedServer("cache", "127.0.0.1", free_port(), tmp_path / "c", password)
    durable.start()
    cache.start()
    try:
        prefix = f"t{uuid.uuid4().hex[:6]}:"
        settings = load_settings(
            data_dir=tmp_path / "data",
            redis_url=durable.url,
            cache_url=cache.url,
            redis_prefix=prefix,
            store_url=f"sqlite:///{tmp_path / 'store.db'}",
        )
        store = Store.connect(settings.resolved_store_url)
        seed_candles(store, ("AAA",), days=5)
        admin = connect(durable.url)
        used = int(_info(admin, "memory")["used_memory"])
        admin.config_set("maxmemory", str(used + 4 * 1024 * 1024))
        blob = b"x" * 64 * 1024
        filled = 0
        refused: BaseException | None = None
        while refused is None and filled < 1000:  # fill it up to the limit (4 MB headroom)
            try:
                admin.set(f"ballast:{filled}", blob)
                filled += 1
            except redis.exceptions.OutOfMemoryError as exc:
                refused = exc
        assert refused is not None and filled > 10
        client = JobClient.open(settings, store=store)
        with pytest.raises(RedisFullError, match="the durable Redis is full"):
            client.submit(BacktestSpec("sma_cross", ("AAA",), "M5"))
        with pytest.raises(RedisFullError):
            client.submit(SweepSpec("sma_cross", ("AAA",), {"fast": [3, 5]}, "M5", chunk_size=1))
        assert store.jobs.list() == []  # nothing half-written: rows withdrawn
        assert list(admin.scan_iter(match=f"{prefix}job:*")) == []
        assert list(admin.scan_iter(match=f"{prefix}interactive*")) == []
        assert int(_info(admin, "stats")["evicted_keys"]) == 0

        # The CLI says so in one line, exit 2.
        env = {
            "TRADERUNNER_DATA_DIR": str(tmp_path / "data"),
            "TRADERUNNER_REDIS_URL": durable.url,
            "TRADERUNNER_CACHE_URL": cache.url,
            "TRADERUNNER_REDIS_PREFIX": prefix,
            "TRADERUNNER_STORE_URL": settings.store_url,
        }
        ran = run_here(
            ["backtest", "sma_cross", "--symbols", "AAA", "--submit", "--no-follow"], env
        )
        assert ran.code == 2
        assert len(ran.err_lines) == 1 and "the durable Redis is full" in ran.err_lines[0]
        assert store.jobs.list() == []

        for i in range(filled):  # free it: the same submission goes through
            admin.delete(f"ballast:{i}")
        record = client.submit(BacktestSpec("sma_cross", ("AAA",), "M5"))
        assert store.jobs.get(record.id) is not None
        assert client.status(record.id).state is JobState.QUEUED
        client.close()
        store.close()
    finally:
        durable.stop()
        cache.stop()
