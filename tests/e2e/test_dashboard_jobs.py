"""Work through the dashboard in a real Chromium: backtests and sweeps queued from the forms and
run by the real worker, their results opened, compared, and a restart of the dashboard mid-job.

Every page is screenshotted into tests/e2e/artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.browser import log_in, screenshot, wait_for, wait_idle
from tests.e2e.conftest import PASSWORD, World
from traderunner.domain.jobs import JobKind
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
    search.send_keys(Keys.ESCAPE)


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
    assert record.owner == "ana" and record.spec["params"] == {"fast": 5, "slow": 20}
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
