"""The browser tests' world: real Valkey, a SQLite store with candles, a real worker that ran a
job, users, the dashboard as its own process, and one headless Chromium per module."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from selenium import webdriver

from tests.e2e.browser import DashboardProcess, browser_missing, chromium
from tests.jobenv import PLUGINS
from tests.jobhelpers import WorkerProcess, seed_candles, settings_env, wait_all
from tests.redishelpers import RedisPair, free_port
from traderunner.config import Settings
from traderunner.dashboard.accounts import Accounts
from traderunner.domain.jobs import JobState
from traderunner.domain.timeframe import Timeframe
from traderunner.store import Store

PASSWORD = "e2e-password-1"
SYMBOLS = ("AAA", "BBB")
GAPPY = "GAPPY"
#: GAPPY's holes, made on purpose: one whole session and a run of bars inside another.
MISSING_DAY_INDEX = 3
GAP_DAY_INDEX = 6
GAP_BARS = 12
USER_LIMIT = 3


def seed_gappy(store: Store) -> tuple[str, str]:
    """M5 bars for GAPPY with one missing session and one 12-bar gap; returns both days."""
    import numpy as np

    from traderunner.domain.sessions import session_ids
    from traderunner.marketdata import synthetic_candles
    from traderunner.marketdata.gaps import day_date

    bars = synthetic_candles(
        GAPPY, Timeframe.M5, datetime(2025, 6, 2, tzinfo=UTC), datetime(2025, 6, 14, tzinfo=UTC)
    )
    days = session_ids(bars.ts)
    unique = np.unique(days)
    keep = days != unique[MISSING_DAY_INDEX]
    keep[np.flatnonzero(days == unique[GAP_DAY_INDEX])[20 : 20 + GAP_BARS]] = False
    kept = np.flatnonzero(keep)
    breaks = np.flatnonzero(np.diff(kept) != 1)
    for lo, hi in zip(np.r_[kept[0], kept[breaks + 1]], np.r_[kept[breaks], kept[-1]], strict=True):
        store.candles.upsert(bars.between(int(bars.ts[lo]), int(bars.ts[hi])))
    return (
        day_date(int(unique[MISSING_DAY_INDEX])).isoformat(),
        day_date(int(unique[GAP_DAY_INDEX])).isoformat(),
    )


@dataclass
class World:
    settings: Settings
    dashboard: DashboardProcess
    worker: WorkerProcess
    missing_day: str
    gap_day: str

    @property
    def url(self) -> str:
        return self.dashboard.url


@pytest.fixture(scope="module")
def world(redis_pair: RedisPair, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    missing = browser_missing()
    if missing:
        pytest.fail(missing)  # make install puts the browser there: a missing one is a failure
    root = tmp_path_factory.mktemp("e2e")
    settings = redis_pair.settings(
        root / "data",
        store_url=f"sqlite:///{root / 'store.db'}",
        dashboard_login_user_limit=USER_LIMIT,
        dashboard_login_address_limit=500,
        dashboard_login_window=120,
        strategy_path=str(PLUGINS),  # the counting strategy holds, for jobs that take a while
    )
    with Store.connect(settings.resolved_store_url) as store:
        seed_candles(store, SYMBOLS, days=5)
        missing_day, gap_day = seed_gappy(store)
        accounts = Accounts(store)
        accounts.add("ana", PASSWORD, admin=True)
        accounts.add("lim", PASSWORD)
    worker = WorkerProcess(settings, root / "logs", concurrency=1).start()
    # One real job, so the System page has a worker that processed something and cache reads.
    from traderunner.jobs.client import JobClient
    from traderunner.jobs.spec import BacktestSpec

    with JobClient.open(settings) as client:
        job = client.submit(BacktestSpec("sma_cross", ("AAA",), "M5"), owner="ana")
        states = wait_all(client, [job.id], timeout=60, worker=worker)
    assert states[job.id] is JobState.SUCCEEDED, worker.logs()
    env = settings_env(settings)
    env.update(
        {
            "TRADERUNNER_DASHBOARD_LOGIN_USER_LIMIT": str(USER_LIMIT),
            "TRADERUNNER_DASHBOARD_LOGIN_ADDRESS_LIMIT": "500",
            "TRADERUNNER_DASHBOARD_LOGIN_WINDOW": "120",
        }
    )
    dashboard = DashboardProcess(env, free_port(), root / "logs" / "dashboard.log").start()
    yield World(settings, dashboard, worker, missing_day, gap_day)
    dashboard.stop()
    worker.stop()


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(world: World, downloads: Path) -> Iterator[webdriver.Chrome]:
    with chromium(downloads=downloads) as driver:
        yield driver


@pytest.fixture
def driver(browser: webdriver.Chrome, world: World) -> webdriver.Chrome:
    """The module's browser with no cookies for this site (a fresh visitor)."""
    browser.get(f"{world.url}/healthz")
    browser.delete_all_cookies()
    return browser
