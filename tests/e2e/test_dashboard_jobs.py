"""Work through the dashboard in a real Chromium: backtests and sweeps queued from the forms and
run by the real worker, their results opened, compared, and a restart of the dashboard mid-job.

Every page is screenshotted into tests/e2e/artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.browser import log_in, screenshot, wait_for, wait_idle
from tests.e2e.conftest import PASSWORD, World
from traderunner.domain.jobs import JobKind, JobState
from traderunner.jobs.client import JobClient


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[JobClient]:
    with JobClient.open(world.settings) as opened:
        yield opened


def _param(driver: webdriver.Chrome, prefix: str, name: str, kind: str = "param") -> object:
    return driver.find_element(
        By.CSS_SELECTOR, f'[id*=\'"type":"{prefix}-{kind}"\'][id*=\'"name":"{name}"\']'
    )


def _type(element: object, text: str) -> None:
    # Select and delete (clear() does not fire React's change event), then type.
    element.send_keys(Keys.CONTROL, "a")  # type: ignore[attr-defined]
    element.send_keys(Keys.BACKSPACE)  # type: ignore[attr-defined]
    if text:
        element.send_keys(text)  # type: ignore[attr-defined]


def choose(driver: webdriver.Chrome, dropdown_id: str, text: str) -> None:
    """Pick ``text`` in a Dash dropdown: open it, type into its search, press Enter."""
    driver.find_element(By.ID, dropdown_id).click()
    search = WebDriverWait(driver, 10).until(
        lambda d: d.find_element(
            By.CSS_SELECTOR, ".dash-dropdown-search input, input.dash-dropdown-search"
        )
    )
    search.send_keys(text)
    search.send_keys(Keys.ENTER)


def _jobs(client: JobClient, kind: JobKind) -> int:
    return client.list(kinds=[kind], limit=1).total


def _wait_state(driver: webdriver.Chrome, job_id: str, state: str, timeout: float = 90) -> None:
    wait_for(driver, f"#job-{job_id}.state-{state}", timeout=timeout)


def _queued_id(driver: webdriver.Chrome, prefix: str) -> str:
    wait_for(driver, f"#{prefix}-queued")
    return str(driver.find_element(By.ID, f"{prefix}-queued").get_attribute("title"))


def test_submit_a_backtest_and_watch_it_finish(
    driver: webdriver.Chrome, world: World, client: JobClient
) -> None:
    log_in(driver, world.url, "ana", PASSWORD)
    driver.get(f"{world.url}/backtests")
    wait_for(driver, "#bt-submit")
    wait_idle(driver)
    screenshot(driver, "backtests-form")
    _type(_param(driver, "bt", "fast"), "5")
    _type(_param(driver, "bt", "slow"), "20")
    _type(driver.find_element(By.ID, "bt-opt-fees_bps"), "1")
    _type(driver.find_element(By.ID, "bt-name"), "e2e first")
    driver.find_element(By.ID, "bt-submit").click()
    job_id = _queued_id(driver, "bt")
    record = client.status(job_id)
    assert record.owner == "ana"
    assert {k: record.spec["params"][k] for k in ("fast", "slow")} == {"fast": 5, "slow": 20}
    assert record.spec["options"]["fees_bps"] == 1.0
    wait_for(driver, f"#job-{job_id}")
    _wait_state(driver, job_id, "succeeded")
    row = driver.find_element(By.ID, f"job-{job_id}").text
    assert "100%" in row and "e2e first" in row
    screenshot(driver, "backtests-done")
    # The list is stored state: a reload shows the same job, done.
    driver.refresh()
    _wait_state(driver, job_id, "succeeded")


def test_a_bad_parameter_shows_its_error_and_queues_nothing(
    driver: webdriver.Chrome, world: World, client: JobClient
) -> None:
    log_in(driver, world.url, "ana", PASSWORD)
    driver.get(f"{world.url}/backtests")
    wait_for(driver, "#bt-submit")
    wait_idle(driver)
    before = _jobs(client, JobKind.BACKTEST)
    _type(_param(driver, "bt", "fast"), "0")
    _type(driver.find_element(By.ID, "bt-opt-stop_loss"), "2")
    driver.find_element(By.ID, "bt-submit").click()
    wait_for(driver, "#bt-error:not(:empty)")
    fast_error = _param(driver, "bt", "fast", kind="param-error").text  # type: ignore[attr-defined]
    assert "below its minimum" in fast_error and "'fast'" in fast_error
    stop_error = driver.find_element(By.ID, "bt-opt-stop_loss-error").text
    assert "stop_loss" in stop_error and "0.02" in stop_error
    assert "nothing was queued" in driver.find_element(By.ID, "bt-error").text
    screenshot(driver, "backtests-bad-input")
    # A cross-field rule the store-side check finds: shown, and still nothing queued.
    _type(_param(driver, "bt", "fast"), "30")
    _type(_param(driver, "bt", "slow"), "20")
    _type(driver.find_element(By.ID, "bt-opt-stop_loss"), "")
    driver.find_element(By.ID, "bt-submit").click()
    WebDriverWait(driver, 10).until(
        lambda d: "fast < slow" in d.find_element(By.ID, "bt-error").text
    )
    assert _jobs(client, JobKind.BACKTEST) == before
    assert not driver.find_elements(By.ID, "bt-queued")


@pytest.fixture(scope="module")
def two_backtests(world: World, client: JobClient) -> list[str]:
    """Two finished backtests of ana's, queued through the client (the form has its own test)."""
    from tests.jobhelpers import wait_all
    from traderunner.jobs.spec import BacktestSpec

    ids = [
        client.submit(
            BacktestSpec("sma_cross", ("AAA", "BBB"), "M5", params={"fast": f, "slow": 40}),
            owner="ana",
        ).id
        for f in (5, 15)
    ]
    states = wait_all(client, ids, timeout=90, worker=world.worker)
    assert all(s is JobState.SUCCEEDED for s in states.values()), world.worker.logs()
    return ids


def _traces(driver: webdriver.Chrome, graph: str, css: str) -> int:
    return len(driver.find_elements(By.CSS_SELECTOR, f"#{graph} {css}"))


def test_open_a_result_and_read_its_charts_metrics_and_files(
    driver: webdriver.Chrome, world: World, two_backtests: list[str], downloads: object
) -> None:
    from pathlib import Path

    run_id = two_backtests[0]
    log_in(driver, world.url, "ana", PASSWORD)
    driver.get(f"{world.url}/runs")
    wait_for(driver, "#runs-grid .ag-row")
    wait_idle(driver)
    screenshot(driver, "runs-list")
    cell = driver.find_element(
        By.CSS_SELECTOR, f"#runs-grid .ag-row[row-id='{run_id}'] .ag-cell[col-id='strategy']"
    )
    cell.click()  # opens the run
    wait_for(driver, "#run-equity .main-svg")
    wait_for(driver, "#run-price .main-svg")
    wait_for(driver, "#run-trades-grid .ag-row")
    wait_idle(driver)
    assert driver.current_url.endswith(f"/runs/{run_id}")
    stored = client_metrics(world, run_id)
    kpis = driver.find_element(By.ID, "run-kpis").text.upper()
    assert "TOTAL RETURN" in kpis and "SHARPE" in kpis and "MAX DRAWDOWN" in kpis
    assert f"{stored['trades']:,.0f}" in driver.find_element(By.ID, "kpi-trades").text
    assert (
        f"{stored['total_return'] * 100:.2f}%"
        in driver.find_element(By.ID, "kpi-total_return").text
    )
    # equity and drawdown lines; candles and the entry and exit markers on the price chart
    assert _traces(driver, "run-equity", ".scatterlayer .trace") == 2
    assert _traces(driver, "run-price", ".boxlayer .trace") == 1
    assert _traces(driver, "run-price", ".scatterlayer .trace") == 2
    assert driver.find_elements(By.CSS_SELECTOR, "#run-trades-grid .ag-header-cell[col-id='pnl']")
    screenshot(driver, "run-detail")
    folder = Path(str(downloads))
    for button, suffix, head in (
        ("run-dl-trades-btn", "-trades.csv", "symbol,entry_time"),
        ("run-dl-equity-btn", "-equity.csv", "time,equity,drawdown"),
        ("run-dl-report-btn", "-report.html", "<!DOCTYPE html>"),
    ):
        driver.find_element(By.ID, button).click()
        target = folder / f"{run_id[:12]}{suffix}"
        WebDriverWait(driver, 20).until(lambda d, t=target: t.exists() and t.stat().st_size > 0)
        assert target.read_text(encoding="utf-8").startswith(head)
    report = (folder / f"{run_id[:12]}-report.html").read_text(encoding="utf-8")
    # plotly.js is inlined (the page opens offline): no script is fetched from anywhere
    assert "<script" in report and '<script src="http' not in report


def client_metrics(world: World, run_id: str) -> dict[str, float]:
    from traderunner.store import Store

    with Store.connect(world.settings.resolved_store_url) as store:
        record = store.runs.get(run_id)
    assert record is not None
    return dict(record.metrics)


def test_compare_two_runs(driver: webdriver.Chrome, world: World, two_backtests: list[str]) -> None:
    log_in(driver, world.url, "ana", PASSWORD)
    driver.get(f"{world.url}/runs")
    wait_for(driver, "#runs-grid .ag-row")
    wait_idle(driver)
    for run_id in two_backtests:
        driver.find_element(
            By.CSS_SELECTOR,
            f"#runs-grid .ag-row[row-id='{run_id}'] .ag-cell[col-id='created'] input",
        ).click()
    WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "runs-compare").is_enabled())
    driver.find_element(By.ID, "runs-compare").click()
    wait_for(driver, "#compare-equity .main-svg")
    wait_for(driver, "#compare-grid .ag-row")
    wait_idle(driver)
    assert "/compare/" in driver.current_url
    assert _traces(driver, "compare-equity", ".scatterlayer .trace") == 2
    grid = driver.find_element(By.ID, "compare-grid").text
    assert "fast=5" in grid and "fast=15" in grid and "Sharpe" in grid
    screenshot(driver, "compare")


def _heatmap_click(driver: webdriver.Chrome, fx: float, fy: float) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    drag = driver.find_element(By.CSS_SELECTOR, "#sweep-heatmap .nsewdrag")
    w, h = drag.size["width"], drag.size["height"]
    ActionChains(driver).move_to_element_with_offset(
        drag, int(w * (fx - 0.5)), int(h * (fy - 0.5))
    ).click().perform()


def test_run_a_sweep_and_open_a_cell_s_backtest(
    driver: webdriver.Chrome, world: World, client: JobClient
) -> None:
    log_in(driver, world.url, "ana", PASSWORD)
    driver.get(f"{world.url}/sweeps")
    wait_for(driver, "#sw-submit")
    wait_idle(driver)
    _type(_param(driver, "sw", "fast"), "5,10")
    _type(_param(driver, "sw", "slow"), "20:40:20")
    driver.find_element(By.ID, "sw-submit").click()
    sweep_id = _queued_id(driver, "sw")
    assert client.status(sweep_id).spec["grid"] == {"fast": [5, 10], "slow": [20, 40]}
    screenshot(driver, "sweeps-form")
    driver.get(f"{world.url}/sweeps/{sweep_id}")
    wait_for(driver, "#sweep-heatmap .main-svg", timeout=120)
    wait_idle(driver)
    assert _traces(driver, "sweep-heatmap", ".heatmaplayer .hm") == 1 or driver.find_elements(
        By.CSS_SELECTOR, "#sweep-heatmap .hm"
    )
    assert (
        len(
            driver.find_elements(
                By.CSS_SELECTOR, "#sweep-top-grid .ag-center-cols-container .ag-row"
            )
        )
        == 4
    )
    _heatmap_click(driver, 0.25, 0.75)  # a cell of the 2x2 grid
    wait_for(driver, "#sweep-cell-params")
    chosen = driver.find_element(By.ID, "sweep-cell-params").text
    assert "fast=" in chosen and "slow=" in chosen
    screenshot(driver, "sweep-detail")
    before = client.list(kinds=[JobKind.BACKTEST], limit=1).total
    driver.find_element(By.ID, "sweep-run-backtest").click()
    WebDriverWait(driver, 10).until(lambda d: "/runs/" in d.current_url)
    job_id = driver.current_url.rsplit("/", 1)[-1]
    record = client.status(job_id)
    assert (
        record.kind is JobKind.BACKTEST
        and client.list(kinds=[JobKind.BACKTEST], limit=1).total == before + 1
    )
    params = record.spec["params"]
    assert f"fast={params['fast']}" in chosen and f"slow={params['slow']}" in chosen
    wait_for(driver, "#run-equity .main-svg", timeout=90)  # the pending page turns into the run
    screenshot(driver, "sweep-cell-backtest")


def test_restart_the_dashboard_mid_job_and_find_it_still_progressing(
    driver: webdriver.Chrome, world: World, client: JobClient
) -> None:
    log_in(driver, world.url, "ana", PASSWORD)
    driver.get(f"{world.url}/sweeps")
    wait_for(driver, "#sw-submit")
    wait_idle(driver)
    choose(driver, "sw-strategy", "counting")
    WebDriverWait(driver, 10).until(
        lambda d: d.find_elements(
            By.CSS_SELECTOR, '[id*=\'"type":"sw-param"\'][id*=\'"name":"hold_ms"\']'
        )
    )
    _type(_param(driver, "sw", "job"), "1:8")
    _type(_param(driver, "sw", "hold_ms"), "3000")  # 8 chunks of 3 s on one worker process
    driver.find_element(By.ID, "sw-submit").click()
    sweep_id = _queued_id(driver, "sw")
    assert len(client.children(sweep_id)) == 8
    driver.get(f"{world.url}/sweeps/{sweep_id}")
    wait_for(driver, "#sweep-chunks")

    def done() -> int:
        return sum(c.state is JobState.SUCCEEDED for c in client.children(sweep_id))

    deadline = time.monotonic() + 60
    while done() < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert 1 <= done() < 8, "the sweep should be under way"
    world.dashboard.stop()
    at_restart = done()
    world.dashboard.start()
    # The same browser, its session in Redis: the page comes back with the job still going.
    driver.get(f"{world.url}/sweeps/{sweep_id}")
    wait_for(driver, "#sweep-chunks .chunk.state-succeeded", timeout=60)
    shown = int(driver.find_element(By.ID, "sweep-chunks-done").text.split()[-3])
    assert shown >= at_restart
    screenshot(driver, "sweep-after-restart")
    wait_for(driver, "#sweep-heatmap .main-svg", timeout=120)
    assert done() == 8 and at_restart < 8
    assert client.status(sweep_id).state is JobState.SUCCEEDED
    screenshot(driver, "sweep-line")


def test_a_user_sees_only_their_own_jobs_and_runs(
    driver: webdriver.Chrome, world: World, two_backtests: list[str]
) -> None:
    log_in(driver, world.url, "lim", PASSWORD)  # not an admin; ana owns every job here
    driver.get(f"{world.url}/backtests")
    wait_for(driver, "#bt-jobs .empty")
    assert "No jobs yet" in driver.find_element(By.ID, "bt-jobs").text
    assert not driver.find_elements(By.CSS_SELECTOR, ".job-row")
    driver.get(f"{world.url}/runs")
    wait_for(driver, "#page-runs .empty")
    driver.get(f"{world.url}/runs/{two_backtests[0]}")
    wait_for(driver, "#page-run")
    text = driver.find_element(By.ID, "page-run").text
    assert "Not yours" in text and "belongs to 'ana'" in text
    assert not driver.find_elements(By.ID, "run-equity")


def test_a_job_opened_before_it_ends_turns_into_its_result(
    driver: webdriver.Chrome, world: World, client: JobClient
) -> None:
    from traderunner.jobs.spec import BacktestSpec

    log_in(driver, world.url, "ana", PASSWORD)
    job = client.submit(
        BacktestSpec("counting", ("AAA",), "M5", params={"hold_ms": 2500}), owner="ana"
    )
    driver.get(f"{world.url}/runs/{job.id}")
    wait_for(driver, "#run-pending-state")
    assert not client.status(job.id).state.terminal  # the page showed the job, not its result
    screenshot(driver, "run-pending")
    wait_for(driver, "#run-equity .main-svg", timeout=60)
    assert client.status(job.id).state is JobState.SUCCEEDED


def test_cancel_a_queued_job_then_retry_it_from_the_list(
    driver: webdriver.Chrome, world: World, client: JobClient
) -> None:
    from traderunner.jobs.spec import BacktestSpec

    log_in(driver, world.url, "ana", PASSWORD)
    # The one worker process holds the first job, so the second waits in the queue.
    busy = client.submit(
        BacktestSpec("counting", ("AAA",), "M5", params={"hold_ms": 4000}), owner="ana"
    )
    waiting = client.submit(BacktestSpec("sma_cross", ("AAA",), "M5"), owner="ana")
    driver.get(f"{world.url}/backtests")
    wait_for(driver, f"#job-{waiting.id}.state-queued")
    driver.find_element(By.CSS_SELECTOR, f'#job-{waiting.id} [id*=\'"action":"cancel"\']').click()
    _wait_state(driver, waiting.id, "cancelled", timeout=20)
    assert "is cancelled" in driver.find_element(By.ID, "bt-jobs-message").text
    assert client.status(waiting.id).state is JobState.CANCELLED
    screenshot(driver, "backtests-cancelled")
    driver.find_element(By.CSS_SELECTOR, f'#job-{waiting.id} [id*=\'"action":"retry"\']').click()
    _wait_state(driver, waiting.id, "succeeded", timeout=90)
    assert client.status(busy.id).state is JobState.SUCCEEDED


def test_the_live_page_shows_live_strategies_and_works_the_kill_switch(
    driver: webdriver.Chrome, world: World
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException

    from traderunner.domain.live import LiveStrategy
    from traderunner.redisdb.connection import connect
    from traderunner.redisdb.keys import Keys
    from traderunner.store import Store
    from traderunner.trader.killswitch import KillSwitch

    with Store.connect(world.settings.resolved_store_url) as store:
        store.live.add(LiveStrategy("e2e-live", "sma_cross", ("AAA",), "M5", {"fast": 5}))
        last = store.candles.series("AAA", "M5")
    assert last is not None
    log_in(driver, world.url, "ana", PASSWORD)
    driver.get(f"{world.url}/live")
    wait_for(driver, "#live-strategies-grid .ag-row")
    wait_idle(driver)
    grid = driver.find_element(By.ID, "live-strategies-grid").text
    assert "e2e-live" in grid and "fast=5" in grid
    assert f"{last.last:%Y-%m-%d %H:%M}" in grid  # the latest candle, read through the cache
    assert "OFF" in driver.find_element(By.ID, "live-switch").text.upper()
    durable = connect(world.settings.redis_url)
    switch = KillSwitch(durable, Keys(world.settings.redis_prefix))
    try:
        driver.find_element(By.ID, "live-halt").click()
        WebDriverWait(driver, 15, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: "HALTED" in d.find_element(By.ID, "live-switch").text.upper()
        )
        state = switch.state()
        assert state is not None and state["by"] == "ana"
        screenshot(driver, "live")
        driver.find_element(By.ID, "live-resume").click()
        WebDriverWait(driver, 15, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: "OFF" in d.find_element(By.ID, "live-switch").text.upper()
        )
        assert switch.state() is None
    finally:
        switch.resume()
        durable.close()


def test_a_backtest_that_fetches_its_data_first(
    driver: webdriver.Chrome, world: World, client: JobClient
) -> None:
    from traderunner.domain.timeframe import Timeframe
    from traderunner.store import Store

    log_in(driver, world.url, "ana", PASSWORD)
    driver.get(f"{world.url}/backtests")
    wait_for(driver, "#bt-submit")
    wait_idle(driver)
    driver.find_element(By.CSS_SELECTOR, "#bt-fetch input[value='synthetic']").click()
    _type(driver.find_element(By.ID, "bt-fetch-symbols"), "NEWSYM")
    _type(driver.find_element(By.ID, "bt-start"), "2025-06-02")
    _type(driver.find_element(By.ID, "bt-end"), "2025-06-06")
    driver.find_element(By.ID, "bt-submit").click()
    job_id = _queued_id(driver, "bt")
    spec = client.status(job_id).spec
    assert spec["fetch"] == "synthetic" and "NEWSYM" in spec["symbols"]
    _wait_state(driver, job_id, "succeeded")
    with Store.connect(world.settings.resolved_store_url) as store:
        fetched = store.candles.series("NEWSYM", Timeframe.M5)
    assert fetched is not None and fetched.count > 0
