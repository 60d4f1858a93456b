"""A real dashboard process and a real headless Chromium, for the browser tests and benchmarks.

Chromium and its driver are Debian's ``chromium`` and ``chromium-driver`` packages
(``/usr/bin/chromium``, ``/usr/bin/chromedriver``; ``make install`` puts them there). Selenium
is pointed at both explicitly, so Selenium Manager never downloads a browser or driver.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path(os.environ.get("TRADERUNNER_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("TRADERUNNER_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
WINDOW = (1440, 1000)

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--hide-scrollbars",
    "--force-color-profile=srgb",
)


def browser_missing() -> str:
    """Why no browser test can run here ('' when Chromium and its driver are installed)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return (
                f"{path} is missing: run 'make install' (apt-get install chromium chromium-driver)"
            )
    return ""


@contextlib.contextmanager
def chromium(
    *, width: int = WINDOW[0], height: int = WINDOW[1], downloads: Path | None = None
) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a fresh profile, closed (profile removed) on exit; files it
    downloads go to ``downloads`` when given."""
    profile = tempfile.mkdtemp(prefix="traderunner-chromium-")
    options = webdriver.ChromeOptions()
    if downloads is not None:
        options.add_experimental_option(
            "prefs",
            {"download.default_directory": str(downloads), "download.prompt_for_download": False},
        )
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    service = Service(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        with contextlib.suppress(Exception):
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class DashboardProcess:
    """``python -m traderunner dashboard`` as its own process, on a free port."""

    env: Mapping[str, str]
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> DashboardProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "traderunner", "dashboard", "--port", str(self.port)],
            env=dict(self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the dashboard exited ({self.proc.returncode}):\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the dashboard did not answer /healthz in {timeout} s:\n{self.logs()}")

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=5)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def log_in(driver: webdriver.Chrome, base_url: str, user: str, password: str) -> None:
    """Fill the login form and submit it (whatever the result)."""
    driver.get(f"{base_url}/login")
    driver.find_element(By.ID, "username").clear()
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()
    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def wait_for(driver: webdriver.Chrome, css: str, timeout: float = 20.0, poll: float = 0.02) -> None:
    """Wait until an element matching ``css`` is visible."""
    WebDriverWait(driver, timeout, poll_frequency=poll).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, css))
    )


def wait_idle(driver: webdriver.Chrome, timeout: float = 20.0) -> None:
    """Wait until Dash has no callback in flight (no ``_dash-loading`` marker on the page)."""
    WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: not d.find_elements(By.CSS_SELECTOR, "[data-dash-is-loading='true']")
    )


def screenshot(driver: webdriver.Chrome, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG of the page under tests/e2e/artifacts/ (the whole page, not just the window)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    if full_page:
        chrome = driver.get_window_size()["height"] - int(
            driver.execute_script("return window.innerHeight")
        )
        for _ in range(3):  # a taller window can re-lay out charts and grids: measure again
            height = int(driver.execute_script("return document.documentElement.scrollHeight"))
            if height <= int(driver.execute_script("return window.innerHeight")):
                break
            driver.set_window_size(WINDOW[0], max(WINDOW[1], min(height + chrome, 6000)))
            time.sleep(0.4)
    driver.save_screenshot(str(path))
    if full_page:
        driver.set_window_size(*WINDOW)
    return path


def session_cookie(driver: webdriver.Chrome) -> str | None:
    found = driver.get_cookie("traderunner_session")
    return None if found is None else str(found["value"])
