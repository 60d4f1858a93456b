"""Session-wide test setup: an isolated data directory, and real Valkey servers on free ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.redishelpers import RedisPair, start_pair

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci")


@pytest.fixture(autouse=True, scope="session")
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point TRADERUNNER_DATA_DIR at a temporary folder for the whole session."""
    path = tmp_path_factory.mktemp("traderunner-data")
    old = os.environ.get("TRADERUNNER_DATA_DIR")
    os.environ["TRADERUNNER_DATA_DIR"] = str(path)
    os.environ.pop("TRADERUNNER_STORE_URL", None)
    yield path
    if old is None:
        os.environ.pop("TRADERUNNER_DATA_DIR", None)
    else:
        os.environ["TRADERUNNER_DATA_DIR"] = old


@pytest.fixture(autouse=True, scope="session")
def _engine_compiled() -> None:
    """Compile (or load) the engine's numba kernels once, before any worker process starts.

    In a fresh clone numba's cache is empty: without this every new worker process would spend
    seconds compiling in its warm-up, and a test that kills workers could kill them all before
    one job ran. Compiling here fills the cache they then load.
    """
    from traderunner.jobs.worker import warm_up

    warm_up()


@pytest.fixture(scope="session")
def redis_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisPair]:
    """One durable + one cache server for the whole session; tests isolate by key prefix."""
    pair = start_pair(tmp_path_factory.mktemp("valkey"))
    yield pair
    pair.durable.stop()
    pair.cache.stop()
