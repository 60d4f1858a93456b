"""Figures for the EODHD fetch path against the local fake server (not a test; no assertions).

    .venv/bin/python -m tests.integration.eodhd.measure_fetch [OUT.json]

Fetches two years of M5 bars for one symbol into a fresh SQLite store three ways, in one run:
cold (every request answered by the HTTP server), from the Redis response cache (no request),
and a rerun on a full store (nothing asked). Prints and writes wall times, bars per second and
the ratios between them. Needs nothing but the repo: it starts its own Valkey pair.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.integration.eodhd.fake_eodhd import FakeEodhd
from tests.redishelpers import start_pair
from traderunner.cache import RedisResponseCache
from traderunner.marketdata.fetch import fetch_to_store
from traderunner.marketdata.providers.eodhd import EodhdProvider
from traderunner.redisdb.connection import connect
from traderunner.redisdb.keys import Keys
from traderunner.store import Store

START, END = datetime(2022, 1, 3, tzinfo=UTC), datetime(2023, 12, 29, 23, tzinfo=UTC)


def main(out: Path) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="measure-fetch-"))
    pair = start_pair(tmp / "valkey")
    fake = FakeEodhd("measure-token").start()
    cache = RedisResponseCache(connect(pair.cache.url, decode=False), Keys("m:"), ttl=600)
    figures: dict[str, float] = {}
    try:
        with EodhdProvider("measure-token", base_url=fake.url, response_cache=cache) as p:
            # cold: empty store, empty cache; cached: a second empty store, the cache now
            # full; rerun: that second store again, now full, so nothing is asked.
            for label, db in (("cold", "a.db"), ("cached", "b.db"), ("rerun", "b.db")):
                store = Store.connect(f"sqlite:///{tmp / db}")
                before = len(fake.requests())
                t0 = time.perf_counter()
                report = fetch_to_store(store, p, ["AAPL.US"], "M5", START, END)
                seconds = time.perf_counter() - t0
                store.close()
                assert report.ok, report
                figures[f"{label}_s"] = seconds
                figures[f"{label}_http_requests"] = len(fake.requests()) - before
                figures[f"{label}_bars"] = report.bars_written
        figures["bars_per_s_cold"] = figures["cold_bars"] / figures["cold_s"]
        figures["bars_per_s_cached"] = figures["cached_bars"] / figures["cached_s"]
        figures["cold_over_cached"] = figures["cold_s"] / figures["cached_s"]
        figures["cold_over_rerun"] = figures["cold_s"] / figures["rerun_s"]
    finally:
        cache.close()
        fake.stop()
        pair.durable.stop()
        pair.cache.stop()
    out.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("measure_fetch.json")
    for name, value in main(target).items():
        print(f"{name:24s} {value:,.4g}")
    print(f"written to {target}")
