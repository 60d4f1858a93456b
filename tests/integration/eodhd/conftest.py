"""The fake EODHD server (one per module, on a free port), providers and stores pointed at it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.eodhd.fake_eodhd import FakeEodhd
from traderunner.marketdata.providers.eodhd import EodhdProvider
from traderunner.store import Store

# Unique per run, so finding it anywhere in output or logs is never a coincidence.
TOKEN = f"tok-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeEodhd]:
    fake = FakeEodhd(TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server: FakeEodhd) -> FakeEodhd:
    """The module's server, with its log, script and failure switches cleared."""
    server.reset()
    return server


class Waits(list[float]):
    """A sleep that records the delays the provider asked for, then really sleeps (briefly)."""

    def __call__(self, seconds: float) -> None:
        import time

        self.append(seconds)
        time.sleep(min(seconds, 0.01))


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def provider(fake: FakeEodhd, waits: Waits) -> Iterator[EodhdProvider]:
    with EodhdProvider(
        TOKEN,
        base_url=fake.url,
        max_retries=2,
        backoff=0.001,
        max_wait=5,
        outage_budget=0.003,  # waits 0.001 then 0.002: three tries, as max_retries=2 gives 429
        sleep=waits,
    ) as p:
        yield p


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.connect(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()
