"""Real Valkey servers for tests: the embedded binary on free ports, one password per pair."""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

from traderunner.config import Settings, load_settings
from traderunner.redisdb.embedded import EmbeddedServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisPair:
    """A real durable and a real cache Valkey server for tests (embedded binary)."""

    durable: EmbeddedServer
    cache: EmbeddedServer

    def settings(self, data_dir: Path, **overrides: object) -> Settings:
        """Settings pointing at these servers (external mode), a fresh store and prefix."""
        values: dict[str, object] = {
            "data_dir": data_dir,
            "redis_url": self.durable.url,
            "cache_url": self.cache.url,
            "redis_prefix": f"t{uuid.uuid4().hex[:8]}:",
            "job_heartbeat_ttl": 2,
            "reconcile_interval": 0.5,
            "reconcile_grace": 2.0,
            "worker_stall_timeout": 10.0,
        }
        values.update(overrides)
        return load_settings(**values)


def start_pair(directory: Path) -> RedisPair:
    password = uuid.uuid4().hex
    durable = EmbeddedServer("durable", "127.0.0.1", free_port(), directory / "durable", password)
    cache = EmbeddedServer(
        "cache", "127.0.0.1", free_port(), directory / "cache", password, maxmemory="64mb"
    )
    durable.start()
    cache.start()
    return RedisPair(durable, cache)


def embedded_env(data_dir: Path) -> dict[str, str]:
    """Environment for a child process that runs traderunner's own embedded servers in
    ``data_dir`` on free ports (no TRADERUNNER_* setting inherited)."""
    from tests.clihelpers import clean_env

    return clean_env(
        TRADERUNNER_DATA_DIR=str(data_dir),
        TRADERUNNER_REDIS_PORT=str(free_port()),
        TRADERUNNER_CACHE_PORT=str(free_port()),
    )
