"""The dashboard in a real headless Chromium, against the dashboard running as its own process.

Every page is screenshotted into tests/e2e/artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.e2e.browser import log_in, screenshot, session_cookie, wait_for, wait_idle
from tests.e2e.conftest import GAP_BARS, GAPPY, PASSWORD, SYMBOLS, USER_LIMIT, World
from traderunner.redisdb.connection import connect

PAGES = ("backtests", "runs", "compare", "sweeps", "data", "live", "system")
NOT_BUILT: tuple[str, ...] = ()


def _text(driver: webdriver.Chrome, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def _on_login_page(driver: webdriver.Chrome) -> bool:
    return "/login" in driver.current_url and bool(driver.find_elements(By.ID, "login-form"))


def test_log_in_and_visit_every_page(driver: webdriver.Chrome, world: World) -> None:
    driver.get(world.url)
    assert _on_login_page(driver)
    screenshot(driver, "login")
    log_in(driver, world.url, "ana", PASSWORD)
    wait_for(driver, "#page-backtests")
    assert _text(driver, "#current-user") == "ana"
    cookie = driver.get_cookie("traderunner_session")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    for page in PAGES:
        driver.find_element(By.ID, f"nav-{page}").click()  # client-side routing
        wait_for(driver, f"#page-{page}")
        wait_idle(driver)
        assert "active" in str(driver.find_element(By.ID, f"nav-{page}").get_attribute("class"))
        if page in NOT_BUILT:
            assert "not built yet" in _text(driver, f"#page-{page}")
        screenshot(driver, f"page-{page}")


def test_system_page_shows_the_real_figures(driver: webdriver.Chrome, world: World) -> None:
    log_in(driver, world.url, "ana", PASSWORD)
    driver.get(f"{world.url}/system")
    wait_for(driver, "#system-workers-grid .ag-row")
    wait_idle(driver)
    durable = connect(world.settings.redis_url)
    try:
        version = str(durable.info("server")["valkey_version"])
    finally:
        durable.close()
    servers = _text(driver, "#system-servers")
    assert version in servers and "noeviction" in servers and "allkeys-lru" in servers
    assert "AOF (ok)" in servers
    workers = _text(driver, "#system-workers")
    assert world.worker.node_name in workers
    kpis = _text(driver, "#system-kpis")
    assert "QUEUED MESSAGES\n0" in kpis.upper()
    assert "CACHE HIT RATE\n—" not in kpis.upper()  # the job read candles through the cache
    limits = _text(driver, "#system-limits")
    assert "EODHD · per minute" in limits and "EODHD · per day" in limits
    assert driver.find_element(By.ID, "flower-link").get_attribute("href").startswith("http")
    screenshot(driver, "page-system-figures")


def test_data_page_lists_the_store_and_finds_the_gaps(
    driver: webdriver.Chrome, world: World
) -> None:
    log_in(driver, world.url, "ana", PASSWORD)
    driver.get(f"{world.url}/data")
    wait_for(driver, "#data-series-grid .ag-row")
    wait_for(driver, "#data-detail-body")
    rows = driver.find_elements(
        By.CSS_SELECTOR, "#data-series-grid .ag-center-cols-container .ag-row"
    )
    assert len(rows) == len(SYMBOLS) + 1
    grid = _text(driver, "#data-series-grid")
    for symbol in (*SYMBOLS, GAPPY):
        assert symbol in grid
    kpis = _text(driver, "#data-kpis").upper()
    assert f"SERIES\n{len(SYMBOLS) + 1}" in kpis
    # A click on GAPPY's row shows its gap report: the session and the bars taken out.
    gappy = next(
        c
        for c in driver.find_elements(
            By.CSS_SELECTOR, "#data-series-grid .ag-cell[col-id='symbol']"
        )
        if c.text == GAPPY
    )
    gappy.click()
    wait_for(driver, "#data-gaps-grid .ag-row")
    wait_idle(driver)
    detail = _text(driver, "#data-detail-body").upper()
    assert "MISSING SESSIONS\n1" in detail
    assert f"GAPS IN SESSIONS\n1\n{GAP_BARS} BARS MISSING" in detail
    gaps = _text(driver, "#data-gaps-grid")
    assert world.missing_day in gaps and world.gap_day in gaps
    screenshot(driver, "page-data-gaps")


def test_a_wrong_password_is_refused_then_limited(driver: webdriver.Chrome, world: World) -> None:
    for _ in range(USER_LIMIT):
        log_in(driver, world.url, "lim", "not-the-password")
        assert _on_login_page(driver)
        assert "wrong user name or password" in _text(driver, ".login-error")
    screenshot(driver, "login-refused")
    log_in(driver, world.url, "lim", PASSWORD)  # the right password, too late
    assert _on_login_page(driver)
    assert "too many failed logins" in _text(driver, ".login-error")
    assert session_cookie(driver) is None
    screenshot(driver, "login-limited")


def test_log_out_and_be_refused(driver: webdriver.Chrome, world: World) -> None:
    log_in(driver, world.url, "ana", PASSWORD)
    wait_for(driver, "#logout-button")
    old = session_cookie(driver)
    assert old is not None
    driver.find_element(By.ID, "logout-button").click()
    wait_for(driver, "#login-form")
    assert session_cookie(driver) is None
    driver.get(f"{world.url}/system")
    assert _on_login_page(driver) and "next=/system" in driver.current_url
    # The old cookie, sent by hand, opens nothing: the session is gone from Redis.
    cookies = {"traderunner_session": old}
    page = httpx.get(f"{world.url}/system", cookies=cookies)
    assert page.status_code == 302 and page.headers["location"].startswith("/login")
    call = httpx.post(f"{world.url}/_dash-update-component", json={}, cookies=cookies)
    assert call.status_code == 401


def test_a_tampered_cookie_is_refused(driver: webdriver.Chrome, world: World) -> None:
    log_in(driver, world.url, "ana", PASSWORD)
    wait_for(driver, "#page-backtests")
    value = session_cookie(driver)
    assert value is not None
    session_id, _, signature = value.rpartition(".")
    forged = f"{session_id}.{signature[::-1]}"
    driver.delete_cookie("traderunner_session")
    driver.add_cookie({"name": "traderunner_session", "value": forged, "path": "/"})
    driver.get(f"{world.url}/data")
    assert _on_login_page(driver)
    assert session_cookie(driver) is None  # the forged cookie was deleted by the server


def test_unauthenticated_page_and_callback_are_refused(
    driver: webdriver.Chrome, world: World
) -> None:
    driver.get(f"{world.url}/data")
    assert _on_login_page(driver) and "next=/data" in driver.current_url
    # A callback from the page's own origin but without a session (fetch in the browser) ...
    status = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch('/_dash-update-component', {method: 'POST', headers: {'Content-Type':
          'application/json'}, body: '{}'}).then(r => done(r.status), e => done(String(e)));
        """
    )
    assert status == 401
    # ... and as a raw HTTP POST.
    raw = httpx.post(
        f"{world.url}/_dash-update-component", json={"output": "page-content.children"}
    )
    assert raw.status_code == 401 and "login required" in raw.text
    assert httpx.get(f"{world.url}/_dash-layout").status_code == 401
    assert httpx.get(f"{world.url}/healthz").json()["status"] == "ok"


def test_the_dashboard_process_reads_nothing_it_should_not(world: World) -> None:
    # The dashboard imports neither the engine nor numba (import-linter holds the code; this
    # holds the running process): its /proc maps list no numba or llvmlite library.
    assert world.dashboard.proc is not None
    maps = Path(f"/proc/{world.dashboard.proc.pid}/maps").read_text()
    assert "llvmlite" not in maps and "numba" not in maps
