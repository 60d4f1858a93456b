"""Market data benchmark: what a fetch costs in EODHD requests and calls, and how long it takes.

``python benchmarks/marketdata.py [--quick]`` starts its own embedded Valkey pair, the local
fake EODHD server (``tests/integration/eodhd/fake_eodhd.py``, which charges calls as EODHD
does: intraday 5, end of day 1, a failed request 0) and, for the job figures, a real Celery
worker. Writes ``benchmarks/results/marketdata.json`` and ``marketdata.md``.

1. **Requests and calls** for a two-year M5 fetch of two symbols (2022-01-03..2023-12-29, four
   600-day requests), during a maintenance window (two 502 answers first), *before* (the old
   accounting: each request charged 5 to the minute and the day quota, failed tries included)
   and *after* (the minute counts requests, the day counts calls, a failed try is refunded).
   Measured from the same run of the same provider code with the two limiter setups.
2. **Time** of that fetch against the fake server with the real limits configured (1,000
   requests a minute, 100,000 calls a day), before and after, alternating rounds. Four
   requests never meet the minute limit, so the same is also measured for a fetch that does:
   40 small intraday requests (a week of 40 symbols) with the minute quota scaled to a
   1-second window (17 per s, the real 1,000/60), where the old accounting grants a fifth of
   the requests.
3. **A fetch-then-backtest job** (``BacktestSpec(fetch="eodhd")``, sma_cross over the two-year
   M5 series of two symbols) on a real worker: wall time from submit to success, split into its
   fetch and backtest phases as the run records them (``fetch_s``, ``backtest_s``); fresh
   symbols each round so every fetch is cold.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from _common import machine_info, run_and_write  # noqa: E402

START, END = datetime(2022, 1, 3, tzinfo=UTC), datetime(2023, 12, 29, 23, tzinfo=UTC)
SYMBOLS = ["AAPL.US", "TSLA.US"]


def _limiter(url: str, *, old: bool, minute: int, minute_window: int, day: int) -> Any:
    from traderunner.ratelimit import Quota, RateLimiter

    unit = "cost" if old else "requests"  # before: the minute counted calls (5 per request)
    quotas = [Quota(minute, minute_window, "minute", unit=unit), Quota(day, 86_400, "day")]
    return RateLimiter(url, name="eodhd", quotas=quotas, prefix=f"b{uuid.uuid4().hex[:6]}:")


class _OldLimiter:
    """The old accounting around a real limiter: no refund for failed requests."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.quotas = inner.quotas

    def acquire(self, cost: int, deadline: float | None = None) -> None:
        self.inner.acquire(cost, deadline=deadline)

    def refund(self, cost: int) -> None:  # the old client charged failed tries too
        pass

    def mark_spent(self, quota: str, resets_at: float) -> None:
        self.inner.mark_spent(quota, resets_at)


def _fetch(
    tmp: Path,
    fake: Any,
    limiter: Any,
    symbols: list[str],
    label: str,
    span: tuple[datetime, datetime] = (START, END),
) -> dict[str, Any]:
    from traderunner.marketdata.fetch import fetch_to_store
    from traderunner.marketdata.providers.eodhd import EodhdProvider
    from traderunner.store import Store

    store = Store.connect(f"sqlite:///{tmp / f'{label}-{uuid.uuid4().hex[:6]}.db'}")
    before_requests, before_calls = len(fake.requests()), fake.calls_used
    t0 = time.perf_counter()
    with EodhdProvider("bench-token", base_url=fake.url, limiter=limiter, backoff=0.01) as p:
        report = fetch_to_store(store, p, symbols, "M5", *span)
    seconds = time.perf_counter() - t0
    store.close()
    inner = getattr(limiter, "inner", limiter)
    used = {u.name: u.used for u in inner.usage()}
    return {
        "ok": report.ok,
        "seconds": seconds,
        "bars": report.bars_written,
        "http_requests": len(fake.requests()) - before_requests,
        "calls_charged_by_eodhd": fake.calls_used - before_calls,
        "minute_quota_charged": used["minute"],
        "day_quota_charged": used["day"],
    }


def accounting(tmp: Path, fake: Any, url: str) -> dict[str, Any]:
    out = {}
    for label, old in (("before", True), ("after", False)):
        fake.reset()
        fake.maintenance(2)
        inner = _limiter(url, old=old, minute=1000, minute_window=60, day=100_000)
        limiter = _OldLimiter(inner) if old else inner
        out[label] = _fetch(tmp, fake, limiter, SYMBOLS, label)
        inner.close()
    return out


def timing(tmp: Path, fake: Any, url: str, rounds: int) -> dict[str, Any]:
    # (a) the two-year fetch of two symbols with the real limits; (b) 40 small requests (one
    # week of 40 symbols), minute scaled, so the limiter and not the server sets the pace
    many = [f"S{i:02d}.US" for i in range(40)]
    week = (datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 8, 23, tzinfo=UTC))
    fake.symbols |= set(many)
    times: dict[str, list[float]] = {k: [] for k in ("before", "after")}
    scaled: dict[str, list[float]] = {k: [] for k in ("before", "after")}
    for _ in range(rounds):
        for label in ("before", "after") if _ % 2 == 0 else ("after", "before"):
            fake.reset()
            inner = _limiter(url, old=label == "before", minute=1000, minute_window=60, day=10**6)
            times[label].append(_fetch(tmp, fake, inner, SYMBOLS, label)["seconds"])
            inner.close()
            fake.reset()
            inner = _limiter(url, old=label == "before", minute=17, minute_window=1, day=10**6)
            got = _fetch(tmp, fake, inner, many, label, week)
            assert got["http_requests"] == 40, got
            scaled[label].append(got["seconds"])
            inner.close()
    return {
        "two_year_two_symbols_s": {k: statistics.median(v) for k, v in times.items()},
        "two_year_two_symbols_all_s": times,
        "forty_requests_minute_scaled_s": {k: statistics.median(v) for k, v in scaled.items()},
        "forty_requests_minute_scaled_all_s": scaled,
        "intraday_requests_per_minute_allowed": {"before": 1000 // 5, "after": 1000},
    }


def job_phases(tmp: Path, fake: Any, pair: Any, rounds: int) -> dict[str, Any]:
    from tests.jobenv import make_settings
    from tests.jobhelpers import WorkerProcess

    from traderunner.domain.jobs import JobState
    from traderunner.jobs.client import JobClient
    from traderunner.jobs.spec import BacktestSpec
    from traderunner.store import Store

    settings = make_settings(pair, tmp / "jobs", eodhd_token="bench-token",
                             eodhd_base_url=fake.url)  # fmt: skip
    store = Store.connect(settings.resolved_store_url)
    worker = WorkerProcess(settings, tmp / "logs", concurrency=1).start()
    client = JobClient.open(settings, store=store)
    rows = []
    try:
        for r in range(rounds):
            symbols = (f"J{r}A.US", f"J{r}B.US")
            fake.symbols |= set(symbols)
            fake.reset()
            spec = BacktestSpec("sma_cross", symbols, "M5", START.date().isoformat(),
                                END.date().isoformat(), fetch="eodhd")  # fmt: skip
            t0 = time.perf_counter()
            record = client.submit(spec, owner="bench")
            done = client.wait(record.id, timeout=600)
            wall = time.perf_counter() - t0
            assert done.state is JobState.SUCCEEDED, (done.error, worker.logs()[-2000:])
            run = store.runs.get(record.id)
            assert run is not None
            rows.append(
                {
                    "wall_s": wall,
                    "fetch_s": run.summary["fetch_s"],
                    "backtest_s": run.summary["backtest_s"],
                    "http_requests": len(fake.requests()),
                }
            )
    finally:
        worker.stop()
        client.close()
        store.close()
    med = {k: statistics.median(r[k] for r in rows) for k in ("wall_s", "fetch_s", "backtest_s")}
    return {"rounds": rows, "median": med}


def run(quick: bool, tmp: Path) -> dict[str, Any]:
    from tests.integration.eodhd.fake_eodhd import FakeEodhd
    from tests.redishelpers import start_pair

    pair = start_pair(tmp / "valkey")
    fake = FakeEodhd("bench-token").start()
    try:
        acct = accounting(tmp, fake, pair.durable.url)
        times = timing(tmp, fake, pair.durable.url, 1 if quick else 3)
        jobs = job_phases(tmp, fake, pair, 1 if quick else 3)
    finally:
        fake.stop()
        pair.durable.stop()
        pair.cache.stop()
    after, before = acct["after"], acct["before"]
    checks = [
        {
            "check": "both fetches stored every bar",
            "ok": before["ok"] and after["ok"] and before["bars"] == after["bars"],
        },
        {
            "check": "after: the day quota charged what EODHD charged",
            "ok": after["day_quota_charged"] == after["calls_charged_by_eodhd"],
        },
        {
            "check": "after: the minute quota charged one per HTTP request",
            "ok": after["minute_quota_charged"] == after["http_requests"],
        },
    ]
    return {
        "accounting": acct,
        "timing": times,
        "job": jobs,
        "checks": checks,
        "machine": machine_info(()),
    }


def markdown(r: dict[str, Any]) -> str:
    a, t, j = r["accounting"], r["timing"], r["job"]
    lines = [
        "# Market data: requests, calls and time of an EODHD fetch",
        "",
        "Two-year M5 fetch of two symbols (4 requests of 600 days) against the local fake "
        "EODHD server, with two 502 answers first (a maintenance window).",
        "",
        "| | HTTP requests | calls EODHD charged | minute quota charged | day quota charged | "
        "seconds |",
        "|---|---|---|---|---|---|",
    ]
    for label in ("before", "after"):
        x = a[label]
        lines.append(
            f"| {label} | {x['http_requests']} | {x['calls_charged_by_eodhd']} | "
            f"{x['minute_quota_charged']} | {x['day_quota_charged']} | {x['seconds']:.2f} |"
        )
    s, m = t["two_year_two_symbols_s"], t["forty_requests_minute_scaled_s"]
    lines += [
        "",
        "Time with the real limits (1,000 requests a minute, 100,000 calls a day), median of "
        "alternating rounds:",
        "",
        "| fetch | before | after | after / before |",
        "|---|---|---|---|",
        f"| two years M5, two symbols (4 requests) | {s['before']:.2f} s | {s['after']:.2f} s "
        f"| {s['after'] / s['before']:.2f} |",
        f"| 40 one-week intraday requests, minute quota scaled to 1 s (17/s) | "
        f"{m['before']:.2f} s | "
        f"{m['after']:.2f} s | {m['after'] / m['before']:.2f} |",
        "",
        "Intraday requests a minute the accounting allows: before "
        f"{t['intraday_requests_per_minute_allowed']['before']}, after "
        f"{t['intraday_requests_per_minute_allowed']['after']}.",
        "",
        "Fetch-then-backtest job (sma_cross, two symbols, two years of M5, cold fetch), median:",
        "",
        "| wall (submit to success) | fetch phase | backtest phase |",
        "|---|---|---|",
        f"| {j['median']['wall_s']:.2f} s | {j['median']['fetch_s']:.2f} s | "
        f"{j['median']['backtest_s']:.2f} s |",
        "",
        "Checks: "
        + ", ".join(f"{c['check']}: {'ok' if c['ok'] else 'FAILED'}" for c in r["checks"]),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(run_and_write(__doc__ or "", "marketdata", run, markdown, "one round of each"))
