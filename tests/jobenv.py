"""A whole job system for tests: real Valkey, a SQLite store with candles, real workers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.jobhelpers import WorkerProcess, seed_candles
from tests.redishelpers import RedisPair
from traderunner.config import Settings
from traderunner.jobs.client import JobClient
from traderunner.store import Store

SYMBOLS = ("AAA", "BBB")

# exploding.py: a strategy that raises; counting.py: one that records every execution
PLUGINS = Path(__file__).parent / "plugins"


@dataclass
class JobEnv:
    settings: Settings
    store: Store
    client: JobClient
    worker: WorkerProcess

    def close(self) -> None:
        self.worker.stop()
        self.client.close()
        self.store.close()


def make_settings(pair: RedisPair, root: Path, **overrides: object) -> Settings:
    root.mkdir(parents=True, exist_ok=True)  # a given store URL's folder must exist
    return pair.settings(
        root / "data",
        store_url=f"sqlite:///{root / 'store.db'}",
        strategy_path=str(PLUGINS),
        **overrides,
    )


@contextmanager
def job_env(
    pair: RedisPair, root: Path, *, concurrency: int = 2, days: int = 5, **overrides: object
) -> Iterator[JobEnv]:
    settings = make_settings(pair, root, **overrides)
    store = Store.connect(settings.resolved_store_url)
    seed_candles(store, SYMBOLS, days=days)
    worker = WorkerProcess(settings, root / "logs", concurrency=concurrency).start()
    client = JobClient.open(settings, store=store)
    env = JobEnv(settings, store, client, worker)
    try:
        yield env
    finally:
        env.close()
