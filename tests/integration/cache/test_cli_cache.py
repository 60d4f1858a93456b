"""``traderunner cache stats``: real processes against the real cache server, or none."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis

from tests.clihelpers import Ran, clean_env, run_here, run_process
from tests.redishelpers import free_port
from traderunner.cache import MarketCache
from traderunner.config import Settings
from traderunner.domain import Timeframe
from traderunner.errors import DataRangeError


def _run(*args: str, **env: str) -> Ran:
    return run_process(["cache", *args], clean_env(**env), timeout=60)


def _env(settings: Settings) -> dict[str, str]:
    return {
        "TRADERUNNER_DATA_DIR": str(settings.data_dir),
        "TRADERUNNER_REDIS_URL": settings.redis_url,
        "TRADERUNNER_CACHE_URL": settings.cache_url,
        "TRADERUNNER_REDIS_PREFIX": settings.redis_prefix,
    }


def test_stats_reports_what_the_processes_counted(settings: Settings, cache: MarketCache) -> None:
    for _ in range(5):
        cache.latest("AAA", Timeframe.M5)
    cache.series("AAA", Timeframe.M5)
    cache.series("AAA", Timeframe.M5)
    cache.close()  # flushes this process's counts
    ran = _run("stats", "--json", **_env(settings))
    assert ran.code == 0, ran.err
    found = json.loads(ran.out)
    assert found["misses"] == 2 and found["store_loads"] == 2
    assert found["hits"] + found["local_hits"] == 5
    assert found["kinds"]["series"]["local_hits"] == 1  # the copy held in process
    assert found["keys"] >= 3  # latest, series, stats
    assert found["memory_used"] > 0 and found["policy"] == "allkeys-lru"
    table = _run("stats", **_env(settings))
    assert table.code == 0, table.err
    for word in ("hits (in process)", "misses", "memory", "allkeys-lru", "series"):
        assert word in table.out


def test_a_cache_server_that_is_not_running_is_one_line(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    ran = _run(
        "stats",
        TRADERUNNER_DATA_DIR=str(tmp_path),
        TRADERUNNER_REDIS_URL=url,
        TRADERUNNER_CACHE_URL=url,
    )
    assert ran.code == 2
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the cache Redis at ")
    assert "is not running" in lines[0] and "traderunner redis start" in lines[0]
    assert ran.out == ""


def test_the_embedded_cache_never_started_is_one_line_and_starts_nothing(tmp_path: Path) -> None:
    port = free_port()
    ran = _run(
        "stats", "--json", TRADERUNNER_DATA_DIR=str(tmp_path), TRADERUNNER_CACHE_PORT=str(port)
    )
    assert ran.code == 2
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1 and "embedded cache server is not running" in lines[0]
    assert not (tmp_path / "redis").exists()  # no password, no config, no server


def test_the_embedded_cache_stopped_is_one_line(tmp_path: Path) -> None:
    from traderunner.config import load_settings
    from traderunner.redisdb.embedded import ensure_password

    ensure_password(load_settings(data_dir=tmp_path))  # it ran once, and is stopped now
    ran = _run("stats", TRADERUNNER_DATA_DIR=str(tmp_path), TRADERUNNER_CACHE_PORT=str(free_port()))
    assert ran.code == 2
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1 and "the embedded cache server at redis://:***@127.0.0.1:" in lines[0]
    password = (tmp_path / "redis" / "password").read_text().strip()
    assert password not in ran.err


def test_data_delete_drops_the_cached_series_and_latest_bar(
    settings: Settings, cache: MarketCache, raw: redis.Redis
) -> None:
    held = cache.series("AAA", Timeframe.M5)
    assert cache.latest("AAA", Timeframe.M5) is not None
    cache.series("BBB", Timeframe.M5)
    aaa = cache.keys.candle_series("AAA", "M5", held.meta["generation"])
    latest = cache.keys.latest_candle("AAA", "M5")
    assert raw.exists(aaa) and raw.exists(latest)
    env = _env(settings) | {"TRADERUNNER_STORE_URL": settings.resolved_store_url}
    ran = run_here(["data", "delete", "--symbol", "AAA", "-t", "M5", "--yes", "--json"], env)
    assert ran.code == 0, ran.err
    assert ran.json()["cache"] == "dropped"
    assert not raw.exists(aaa) and not raw.exists(latest)
    assert len(list(raw.scan_iter(match=cache.keys.candle_series("BBB", "M5", "*")))) == 1
    # This process still holds its copy of AAA, but every read checks the store first.
    with pytest.raises(DataRangeError, match="no M5 candles for 'AAA'"):
        cache.series("AAA", Timeframe.M5)
    # The latest bar held in process goes with the invalidation the DEL pushed to it.
    deadline = time.monotonic() + 5
    while cache.latest("AAA", Timeframe.M5) is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.latest("AAA", Timeframe.M5) is None
