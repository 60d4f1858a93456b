"""Dashboard benchmarks in a real browser: page load p50/p99 per page, and the process's memory.

``python benchmarks/dashboard.py [--rounds N]`` starts its own two Valkey servers, a SQLite
store with one year of M5 bars for three symbols (plus the login user), a worker (so the System
page has one to ask) and ``traderunner dashboard`` as its own process, then drives Debian's
headless Chromium. Writes benchmarks/results/dashboard.json and dashboard.md; asserts nothing.

Each round visits every page in turn, so no page is measured in a warm loop of its own:

* **full load**: ``driver.get(url)`` (HTML, the cached Dash bundles, the layout, the routing
  callback, the page's own callbacks) until the page's content is shown, and until no callback
  is in flight (*complete*);
* **navigation**: a click on the page's link in the sidebar (what a user mostly does) until
  the same two moments.

The System page's worker list is its own callback, answered from the process's worker watch
(one Celery broadcast every 5 s while a System page is open): *shown* is the page without it,
*complete* with it.
Detail pages (a run, two runs compared, a sweep) are loaded by their URL only.

**Submit to chart**: on the Backtests page, a click on "Queue backtest" (the form's defaults:
sma_cross on AAPL, its whole year of M5 bars) then on the "open" link of the queued job, until
the run's equity chart is drawn; one worker (concurrency 1) runs the jobs.

Memory: RSS and PSS (``/proc/PID/smaps_rollup``) of the dashboard process idle after start,
after every page load of the run, and after 50 results opened one after another.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
sys.path.insert(0, str(ROOT))

from benchmarks._common import machine_info  # noqa: E402

PASSWORD = "benchmark-password"
SYMBOLS = ("AAPL", "MSFT", "TSLA")
TRADING_DAYS = 250  # about one year of M5 bars per symbol

#: page -> (link id or None, CSS of the content that must be visible for "shown")
PAGES: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "backtests": ("nav-backtests", ("#bt-submit", "#bt-jobs-table")),
    "runs": ("nav-runs", ("#runs-grid .ag-row",)),
    "run": (None, ("#run-equity .main-svg", "#run-price .main-svg", "#run-trades-grid .ag-row")),
    "compare": ("nav-compare", ("#compare-runs",)),
    "compare_two": (None, ("#compare-equity .main-svg", "#compare-grid .ag-row")),
    "sweeps": ("nav-sweeps", ("#sw-submit", "#sw-jobs-table")),
    "sweep": (None, ("#sweep-heatmap .main-svg", "#sweep-top-grid .ag-row")),
    "data": ("nav-data", ("#data-series-grid .ag-row", "#data-counts .main-svg")),
    "system": ("nav-system", ("#system-servers .card", "#system-ops .main-svg")),
}
#: Results opened one after another for the memory figure.
OPENED = 50
#: Submit-to-chart rounds (one-symbol, one-year M5 backtests through the form).
SUBMITS = 10


def memory(pid: int) -> dict[str, float]:
    """RSS and PSS of one process in MiB."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            out["rss_mb"] = round(int(line.split()[1]) / 1024, 1)
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            out["pss_mb"] = round(int(line.split()[1]) / 1024, 1)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values) * 1000, 1),
        "p99_ms": round(percentile(values, 0.99) * 1000, 1),
        "min_ms": round(min(values) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def measure(rounds: int) -> dict[str, Any]:
    from selenium.webdriver.common.by import By
    from tests.e2e.browser import DashboardProcess, chromium, log_in, wait_for, wait_idle
    from tests.jobhelpers import WorkerProcess, seed_candles, settings_env
    from tests.redishelpers import free_port, start_pair

    from traderunner.dashboard.accounts import Accounts
    from traderunner.store import Store

    load_before = os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix="traderunner-dashboard-bench-"))
    pair = start_pair(root / "valkey")
    worker = dashboard = None
    try:
        settings = pair.settings(root / "data", store_url=f"sqlite:///{root / 'store.db'}")
        with Store.connect(settings.resolved_store_url) as store:
            seed_candles(store, SYMBOLS, days=TRADING_DAYS)
            bars = sum(s.count for s in store.candles.list_series())
            Accounts(store).add("bench", PASSWORD, admin=True)
        worker = WorkerProcess(settings, root / "logs", concurrency=1).start()
        run_ids, sweep_id = _seed_runs(settings, worker)
        paths = {
            "backtests": "/backtests",
            "runs": "/runs",
            "run": f"/runs/{run_ids[0]}",
            "compare": "/compare",
            "compare_two": f"/compare/{run_ids[0]},{run_ids[1]}",
            "sweeps": "/sweeps",
            "sweep": f"/sweeps/{sweep_id}",
            "data": "/data",
            "system": "/system",
        }
        env = settings_env(settings)
        # Every round logs in again from 127.0.0.1: lift the per-address limit for the run.
        env["TRADERUNNER_DASHBOARD_LOGIN_ADDRESS_LIMIT"] = "100000"
        dashboard = DashboardProcess(env, free_port(), root / "dashboard.log")
        dashboard.start()
        assert dashboard.proc is not None
        time.sleep(2.0)
        idle = memory(dashboard.proc.pid)
        timings: dict[str, dict[str, list[float]]] = {
            page: {"load_shown": [], "load_complete": [], "nav_shown": [], "nav_complete": []}
            for page in PAGES
        }
        login_times: list[float] = []

        def timed(page: str, mode: str, start: Callable[[], None], keep: bool) -> None:
            t0 = time.perf_counter()
            start()
            for css in PAGES[page][1]:
                wait_for(driver, css, timeout=30, poll=0.005)
            t_shown = time.perf_counter() - t0
            wait_idle(driver, timeout=30)
            if keep:
                timings[page][f"{mode}_shown"].append(t_shown)
                timings[page][f"{mode}_complete"].append(time.perf_counter() - t0)

        with chromium() as driver:
            for page_round in range(rounds + 1):  # round 0 warms the browser cache: not kept
                driver.delete_all_cookies()
                t0 = time.perf_counter()
                driver.get(f"{dashboard.url}/login")
                wait_for(driver, "#login-form")
                if page_round:
                    login_times.append(time.perf_counter() - t0)
                log_in(driver, dashboard.url, "bench", PASSWORD)
                wait_for(driver, "#page-backtests")
                wait_idle(driver)
                keep = page_round > 0
                for page in PAGES:
                    url = dashboard.url + paths[page]
                    timed(page, "load", lambda url=url: driver.get(url), keep)
                order = [p for p in PAGES if PAGES[p][0]]
                for page in order[1:] + order[:1]:  # from another page to each, by its link
                    link = str(PAGES[page][0])
                    click = lambda link=link: driver.find_element(By.ID, link).click()  # noqa: E731
                    timed(page, "nav", click, keep)
            after_pages = memory(dashboard.proc.pid)
            submit_times = _submit_to_chart(driver, dashboard.url, SUBMITS)
            for rid in run_ids[:OPENED]:
                driver.get(f"{dashboard.url}/runs/{rid}")
                for css in PAGES["run"][1]:
                    wait_for(driver, css, timeout=30)
            after_opened = memory(dashboard.proc.pid)
        loads = rounds * (len(PAGES) + len(order))
        return {
            "machine": machine_info(("traderunner", "dash", "dash-ag-grid", "plotly", "selenium")),
            "setup": {
                "rounds": rounds,
                "symbols": list(SYMBOLS),
                "bars_in_store": bars,
                "workers": 1,
                "submit_to_chart": "sma_cross on AAPL, all of its one year of M5 bars, "
                f"{SUBMITS} times through the form",
                "browser": "Debian chromium, headless, 1440x1000",
                "server": "waitress, 8 threads",
                # The machine is shared: a load far above its CPU count slows every figure.
                "load_average_1m": {
                    "before": round(load_before[0], 1),
                    "after": round(os.getloadavg()[0], 1),
                },
            },
            "login_page": summary(login_times),
            "pages": {
                page: {kind: summary(values) for kind, values in kinds.items() if values}
                for page, kinds in timings.items()
            },
            "submit_to_chart": summary(submit_times),
            "memory": {
                "idle": idle,
                f"after_{loads}_page_loads": after_pages,
                f"after_{OPENED}_results_opened": after_opened,
            },
        }
    finally:
        if dashboard is not None:
            dashboard.stop()
        if worker is not None:
            worker.stop()
        pair.durable.stop()
        pair.cache.stop()


def _seed_runs(settings: Any, worker: Any) -> tuple[list[str], str]:
    """OPENED finished backtests (one symbol, one year of M5, different parameters) and a
    finished 4x4 sweep, queued through the job client and run by the worker."""
    from tests.jobhelpers import wait_all

    from traderunner.jobs.client import JobClient
    from traderunner.jobs.spec import BacktestSpec, SweepSpec

    with JobClient.open(settings) as client:
        ids = [
            client.submit(
                BacktestSpec(
                    "sma_cross", (SYMBOLS[i % 3],), "M5", params={"fast": 5 + i, "slow": 100}
                ),
                owner="bench",
            ).id
            for i in range(OPENED)
        ]
        sweep = client.submit(
            SweepSpec("sma_cross", ("AAPL",), {"fast": [5, 10, 15, 20], "slow": [30, 50, 80, 120]}),
            owner="bench",
        ).id
        states = wait_all(client, [*ids, sweep], timeout=900, worker=worker)
        if any(s.value != "succeeded" for s in states.values()):
            raise RuntimeError(f"seeding jobs failed: {states}")
    return ids, sweep


def _submit_to_chart(driver: Any, url: str, rounds: int) -> list[float]:
    """Click "Queue backtest" (the form's defaults: sma_cross on the first symbol, AAPL, all
    its bars), follow the "open" link, until the run's equity chart is drawn."""
    from selenium.webdriver.common.by import By
    from tests.e2e.browser import wait_for, wait_idle

    out = []
    for i in range(rounds + 1):  # the first is a warm-up
        driver.get(f"{url}/backtests")
        wait_for(driver, "#bt-submit")
        wait_idle(driver)
        t0 = time.perf_counter()
        driver.find_element(By.ID, "bt-submit").click()
        wait_for(driver, "#bt-queued a", timeout=30, poll=0.005)
        driver.find_element(By.CSS_SELECTOR, "#bt-queued a").click()
        try:
            wait_for(driver, "#run-equity .main-svg", timeout=120, poll=0.005)
        except Exception:
            driver.save_screenshot(str(RESULTS / "dashboard-submit-failed.png"))
            raise
        if i:
            out.append(time.perf_counter() - t0)
    return out


def markdown(result: dict[str, Any]) -> str:
    setup = result["setup"]
    lines = [
        "# Dashboard: page loads in a real browser, and memory",
        "",
        f"Measured {result['machine']['date']} on {result['machine']['cpu']} "
        f"({result['machine']['cpu_count']} CPUs) by `python benchmarks/dashboard.py "
        f"--rounds {setup['rounds']}`: {setup['browser']}; {setup['server']}; a SQLite store "
        f"with {setup['bars_in_store']:,} M5 bars ({', '.join(setup['symbols'])}); one worker. "
        "Each round loads every page in turn, then navigates to each by its link. "
        f"Load average (1 min) {setup['load_average_1m']['before']} before, "
        f"{setup['load_average_1m']['after']} after, on {result['machine']['cpu_count']} CPUs.",
        "",
        "*shown*: the page's content is visible (its table rows and its charts drawn); "
        "*complete*: no Dash callback is in flight (for System: also the worker list).",
        "",
        "| page | full load shown p50 / p99 | full load complete p50 / p99 | "
        "navigation shown p50 / p99 | navigation complete p50 / p99 |",
        "|---|---|---|---|---|",
    ]
    for page, kinds in result["pages"].items():
        cells = [
            f"{kinds[k]['p50_ms']:.0f} / {kinds[k]['p99_ms']:.0f} ms" if k in kinds else "—"
            for k in ("load_shown", "load_complete", "nav_shown", "nav_complete")
        ]
        lines.append(f"| {page} | " + " | ".join(cells) + " |")
    login = result["login_page"]
    submit = result["submit_to_chart"]
    lines += [
        f"| login page (GET /login) | {login['p50_ms']:.0f} / {login['p99_ms']:.0f} ms | | | |",
        "",
        f"Submit to chart ({setup['submit_to_chart']}; one worker): "
        f"p50 {submit['p50_ms']:.0f} ms, p99 {submit['p99_ms']:.0f} ms "
        f"(min {submit['min_ms']:.0f}, max {submit['max_ms']:.0f}, n={submit['n']}).",
        "",
        "| dashboard process memory | RSS | PSS |",
        "|---|---|---|",
    ]
    for label, figures in result["memory"].items():
        lines.append(
            f"| {label.replace('_', ' ')} | {figures['rss_mb']:.0f} MiB | "
            f"{figures['pss_mb']:.0f} MiB |"
        )
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--out", default="dashboard")
    args = parser.parse_args()
    result = measure(args.rounds)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (RESULTS / f"{args.out}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
