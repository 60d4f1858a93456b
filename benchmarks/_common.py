"""Shared pieces of the benchmarks: synthetic data, timing, machine info, child processes.

Only NumPy is imported at module level on purpose: the cold-start child processes import this
module to build their data, and must not have pandas (or anything else a contestant imports)
loaded before their timed section starts.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"

#: 2015-01-01T00:00:00Z, the first bar of every benchmark series.
START_NS = 1_420_070_400 * 1_000_000_000
#: One M5 bar in nanoseconds. The index is regular (no sessions): the peers need no calendar.
BAR_NS = 300 * 1_000_000_000
SEED = 20240501
#: The walk opens with this many bars of steady decline (drift below), so that every fast SMA
#: of the benchmarks starts *below* its slow SMA. Why: a "long while fast > slow" rule would
#: enter on the first valid bar if fast started above, but the crossing-based peers
#: (vectorbt's ``ma_crossed_above``, backtesting.py's ``crossover``) need an actual cross, so
#: the first trade would differ for a reason that has nothing to do with speed or correctness.
DECLINE_BARS = 400
DECLINE_DRIFT = -0.0015


def make_ohlcv(n: int, seed: int = SEED) -> dict[str, npt.NDArray[Any]]:
    """A deterministic geometric random walk of ``n`` M5 bars as plain NumPy columns.

    ``ts`` is int64 nanoseconds (UTC bar open times); prices are float64 and always positive;
    ``high``/``low`` bracket ``open``/``close``. Same ``(n, seed)`` -> same bytes. The first
    ``DECLINE_BARS`` bars drift down (see there why).
    """
    rng = np.random.default_rng(seed)
    log_ret = rng.normal(0.0, 0.0015, n)
    log_ret[:DECLINE_BARS] += DECLINE_DRIFT
    close = 100.0 * np.exp(np.cumsum(log_ret))
    open_ = np.empty(n)
    open_[0] = 100.0
    open_[1:] = close[:-1] * np.exp(rng.normal(0.0, 0.0002, n - 1))
    wick = np.abs(rng.normal(0.0, 0.0008, (2, n)))
    high = np.maximum(open_, close) * (1.0 + wick[0])
    low = np.minimum(open_, close) * (1.0 - wick[1])
    volume = rng.integers(100, 10_000, n).astype(np.float64)
    ts = START_NS + BAR_NS * np.arange(n, dtype=np.int64)
    return {"ts": ts, "open": open_, "high": high, "low": low, "close": close, "volume": volume}


def to_frame(data: dict[str, npt.NDArray[Any]], title_case: bool = False) -> Any:
    """The columns as a DataFrame on a UTC DatetimeIndex (``Open``... for backtesting.py)."""
    import pandas as pd

    index = pd.DatetimeIndex(data["ts"].astype("datetime64[ns]")).tz_localize("UTC")
    cols = ("open", "high", "low", "close", "volume")
    return pd.DataFrame(
        {(c.title() if title_case else c): data[c] for c in cols}, index=index, copy=False
    )


def sma_np(x: npt.NDArray[np.float64], window: int) -> npt.NDArray[np.float64]:
    """Plain-NumPy simple moving average (cumulative sums), NaN until the window is full."""
    out = np.full(len(x), np.nan)
    csum = np.cumsum(np.insert(x, 0, 0.0))
    out[window - 1 :] = (csum[window:] - csum[:-window]) / window
    return out


def interleaved_times(
    fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1
) -> dict[str, dict[str, Any]]:
    """Time several contestants in turns (A B, B A, A B ...) rather than one block each.

    Why: on a shared machine the load changes by the second; taking turns exposes every
    contestant to the same conditions, so their ratio is fairer than that of two blocks.
    Returns per name ``{"median_s", "min_s", "runs_s", "result"}`` (result of the last call).
    """
    results: dict[str, Any] = {}
    for _ in range(warmup):
        for name, fn in fns.items():
            results[name] = fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for k in range(repeats):
        for name in names if k % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            results[name] = fns[name]()
            times[name].append(time.perf_counter() - t0)
    return {
        name: {
            "median_s": statistics.median(times[name]),
            "min_s": min(times[name]),
            "runs_s": times[name],
            "result": results[name],
        }
        for name in fns
    }


def rss_mb() -> float:
    """Current resident set size of this process in MiB (Linux /proc; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(code: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], float]:
    """Run ``code`` in a fresh interpreter; (the JSON it printed last, whole-process wall s).

    The child gets this folder on ``sys.path`` so it can ``import _common``. A failing child
    raises RuntimeError with its stderr tail: a benchmark that did not run must not report.
    """
    prelude = f"import sys; sys.path.insert(0, {str(BENCH_DIR)!r})\n"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", prelude + code],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"benchmark child failed (exit {proc.returncode}):\n{tail}")
    last = proc.stdout.strip().splitlines()[-1]
    return json.loads(last), wall


def numba_cache_stats(package: str) -> dict[str, int]:
    """How ``package``'s jitted functions got their machine code in this process.

    ``numba_loaded``: from numba's file cache. ``numba_compiled``: compiled although the
    function is cached (``cache=True``), so its cache entry was missing or stale (a first run,
    or its source changed since the cache was written). ``numba_uncached``: compiled because
    the function has no cache at all, which every fresh process pays.
    """
    from numba.core.caching import NullCache
    from numba.core.registry import CPUDispatcher

    out = {"numba_loaded": 0, "numba_compiled": 0, "numba_uncached": 0}
    for name, module in list(sys.modules.items()):
        if name != package and not name.startswith(package + "."):
            continue
        for value in list(vars(module).values()):
            if not isinstance(value, CPUDispatcher):
                continue
            hits = sum(value.stats.cache_hits.values())
            built = max(len(value.overloads) - hits, 0)
            out["numba_loaded"] += hits
            cache = getattr(value, "_cache", None)  # private, but the only way to tell
            key = "numba_uncached" if isinstance(cache, NullCache) else "numba_compiled"
            out[key] += built
    return out


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


ENGINE_DISTS = ("traderunner", "numpy", "numba", "pandas", "vectorbt", "backtesting")


def machine_info(dists: tuple[str, ...] = ENGINE_DISTS) -> dict[str, Any]:
    """What the figures were measured on (with the versions of ``dists``); written next to
    every result."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {d: _version(d) for d in dists},
    }


def run_and_write(
    doc: str,
    name: str,
    run: Callable[[bool, Path], dict[str, Any]],
    markdown: Callable[[dict[str, Any]], str],
    quick_help: str,
) -> int:
    """The ``main`` of a benchmark: parse ``--quick``, run in a temporary folder (removed
    afterwards), write ``results/{name}[-quick].{json,md}``, print the Markdown; 0 when every
    check in ``report["checks"]`` passed, else 1."""
    import argparse
    import shutil
    import tempfile

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    args = parser.parse_args()
    sys.path.insert(0, str(BENCH_DIR.parent))
    tmp = Path(tempfile.mkdtemp(prefix=f"tr-{name}-bench-"))
    try:
        report = run(args.quick, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = f"{name}-quick" if args.quick else name
    (RESULTS_DIR / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS_DIR / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if all(c["ok"] for c in report["checks"]) else 1


#: 2015-01-01T00:00:00Z in epoch seconds: bar 0 of :func:`candle_walk`.
WALK_START_S = 1_420_070_400


def candle_walk(symbol: str, n: int, seed: int, start_bar: int = 0) -> Any:
    """``n`` M5 ``CandleArrays`` of a seeded random walk, from bar number ``start_bar`` of a
    regular 5-minute clock starting at :data:`WALK_START_S` (the store benchmarks' data)."""
    from traderunner.domain import CandleArrays, Timeframe

    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0015, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = np.abs(rng.normal(0.0, 0.0008, (2, n)))
    return CandleArrays(
        ts=(WALK_START_S + 300 * (start_bar + np.arange(n, dtype=np.int64))) * 1_000_000_000,
        open=open_,
        high=np.maximum(open_, close) * (1 + wick[0]),
        low=np.minimum(open_, close) * (1 - wick[1]),
        close=close,
        volume=rng.integers(100, 10_000, n).astype(np.float64),
        symbol=symbol,
        timeframe=Timeframe.M5,
        source="bench",
    )
