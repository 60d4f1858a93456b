"""Benchmark traderunner's backtest engine against vectorbt, backtesting.py and plain NumPy.

Run ``.venv/bin/python benchmarks/engine.py`` (about two minutes) or ``--quick`` (smaller
sizes, under a minute, for a smoke run). Writes ``benchmarks/results/engine.json`` and
``engine.md`` (``engine-quick*`` with ``--quick``; ``--out`` to change the folder) and prints
a summary. ``--profile`` also writes ``engine_profile.txt``, a cProfile breakdown of our warm
backtest and sweep; it is written anyway when a goal is missed.

Every contestant runs the same rule on the same synthetic data (see ``_common.make_ohlcv``):
SMA 10/50 crossover, long from a crossing above until a crossing below, filled at the close,
all equity in, no fees. Ours is given a DataFrame, as a user passes one (its headline figures
alternate with vectorbt's in one process; figures from separate loops and from CandleArrays
input are reported beside them); the sweep runs ours on 2 threads and on 1 against
single-threaded vectorbt and a NumPy loop. Before any timing is trusted, trade counts and
total returns are compared; a failed comparison is written as a banner at the top of
engine.md, ``checks_passed: false`` in engine.json, a ``CHECK FAILED`` line in the summary,
and exit code 1.
Goals are reported (met or missed), never asserted: they do not change the exit code.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _peers
import _report
from _checks import EXACT_TOL, bt_rounding_bound, check_return, check_trades
from _cold import cold_run
from _common import (
    RESULTS_DIR,
    interleaved_times,
    machine_info,
    make_ohlcv,
    to_frame,
)

FAST, SLOW = 10, 50
#: Large against the price (at most a few hundred) so backtesting.py's whole-unit rounding
#: leaves at most ~1e-6 of equity uninvested per trade; the other contestants are
#: scale-free, so the same cash changes nothing for them.
CASH = 1_000_000_000.0
GRID = {"fast": list(range(5, 51, 5)), "slow": list(range(20, 201, 20))}
GOALS = {"single_speedup": 5.0, "cold_s": 2.0, "sweep_speedup": 20.0, "peak_mb": 300.0}
OURS_OPTIONS: dict[str, Any] = {"fill": "close", "direction": "long", "size": 1.0, "cash": CASH}


@dataclass(frozen=True)
class Plan:
    """Sizes and repeats of one run."""

    mode: str
    single_bars: int
    bt_bars: int
    sweep_bars: int
    repeats: int
    bt_repeats: int
    sweep_repeats: int
    empty_cache_run: bool


FULL = Plan("full", 1_000_000, 100_000, 100_000, 7, 5, 5, True)
QUICK = Plan("quick", 100_000, 20_000, 20_000, 3, 3, 3, False)


# --- measurements ---------------------------------------------------------------------------


def candles_of(data: dict[str, Any]) -> Any:
    from traderunner.domain.candles import CandleArrays
    from traderunner.domain.timeframe import Timeframe

    return CandleArrays(**data, symbol="BENCH", timeframe=Timeframe.M5, source="synthetic")


def peer_frame(data: dict[str, Any], title_case: bool = False) -> Any:
    frame = to_frame(data, title_case=title_case)
    frame.index = frame.index.tz_localize(None)  # why: see the _peers docstring
    return frame


def timing_fields(t: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``{name}_s`` (median), ``{name}_min_s`` and ``{name}_runs_s`` for each contestant."""
    out: dict[str, Any] = {}
    for name, v in t.items():
        out |= {
            f"{name}_s": v["median_s"],
            f"{name}_min_s": v["min_s"],
            f"{name}_runs_s": v["runs_s"],
        }
    return out


def separate_times(fns: dict[str, Any], repeats: int) -> dict[str, dict[str, Any]]:
    """Each contestant's runs in a block of its own (warm memory: what a loop of one library
    sees), for comparison with the alternating figure."""
    import statistics

    out: dict[str, dict[str, Any]] = {}
    for name, fn in fns.items():
        fn()
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t0)
        out[name] = {"median_s": statistics.median(runs), "min_s": min(runs), "runs_s": runs}
    return out


def bench_single(plan: Plan, checks: list[dict[str, Any]]) -> dict[str, Any]:
    """1. One warm backtest on ``single_bars``: ours vs vectorbt, both with indicators.

    The headline figure is the user's shape: our engine given a DataFrame (UTC DatetimeIndex,
    float64 columns) alternating with vectorbt in one process. Beside it: ours on
    ``CandleArrays`` in the same alternation, and both in separate loops (each library's runs
    in a block of their own, warm memory).
    """
    from traderunner.engine import run_backtest

    data = make_ohlcv(plan.single_bars)
    candles, close = candles_of(data), peer_frame(data)["close"]
    frame = to_frame(data)
    params = {"fast": FAST, "slow": SLOW}
    fns = {
        "ours": lambda: run_backtest("sma_cross", frame, params, **OURS_OPTIONS),
        "vectorbt": lambda: _peers.vbt_backtest(close, FAST, SLOW, CASH),
        "ours_arrays": lambda: run_backtest("sma_cross", candles, params, **OURS_OPTIONS),
    }
    t = interleaved_times(fns, plan.repeats)
    sep = separate_times({k: fns[k] for k in ("ours", "vectorbt")}, plan.repeats)
    res, (vbt_ret, vbt_n) = t["ours"]["result"], t["vectorbt"]["result"]
    last_open = res.n_trades > 0 and res.trades["exit_reason"].iloc[-1] == "end"
    tag = f"{plan.single_bars:,} bars"
    checks.append(check_trades(f"trades vs vectorbt ({tag})", res.n_trades, vbt_n, last_open, True))
    checks.append(
        check_return(
            f"total return vs vectorbt ({tag})", res.metrics["total_return"], vbt_ret, EXACT_TOL
        )
    )
    same = t["ours_arrays"]["result"]
    checks.append(
        {
            "name": f"DataFrame and CandleArrays inputs agree ({tag})",
            "passed": same.n_trades == res.n_trades
            and same.metrics["total_return"] == res.metrics["total_return"],
            "ours": res.n_trades,
            "peer": same.n_trades,
            "tolerance": "equal",
        }
    )
    return {
        "bars": plan.single_bars,
        **timing_fields(t),
        "speedup": t["vectorbt"]["median_s"] / t["ours"]["median_s"],
        "speedup_of_minimums": t["vectorbt"]["min_s"] / t["ours"]["min_s"],
        "speedup_arrays": t["vectorbt"]["median_s"] / t["ours_arrays"]["median_s"],
        "separate_ours_s": sep["ours"]["median_s"],
        "separate_vectorbt_s": sep["vectorbt"]["median_s"],
        "separate_runs_s": {k: v["runs_s"] for k, v in sep.items()},
        "speedup_separate": sep["vectorbt"]["median_s"] / sep["ours"]["median_s"],
        "trades": res.n_trades,
        "total_return": res.metrics["total_return"],
    }


def bench_backtesting_py(plan: Plan, checks: list[dict[str, Any]]) -> dict[str, Any]:
    """1b. backtesting.py on ``bt_bars`` (its per-bar Python loop is too slow for 1M)."""
    from traderunner.engine import run_backtest

    data = make_ohlcv(plan.bt_bars)
    candles, frame = candles_of(data), peer_frame(data, title_case=True)
    t = interleaved_times(
        {
            "ours": lambda: run_backtest(
                "sma_cross", candles, {"fast": FAST, "slow": SLOW}, **OURS_OPTIONS
            ),
            "backtesting": lambda: _peers.bt_backtest(frame, FAST, SLOW, CASH),
        },
        plan.bt_repeats,
    )
    res, (bt_ret, bt_n) = t["ours"]["result"], t["backtesting"]["result"]
    last_open = res.n_trades > 0 and res.trades["exit_reason"].iloc[-1] == "end"
    finalize = _peers.bt_has_finalize()
    tag = f"{plan.bt_bars:,} bars"
    checks.append(
        check_trades(f"trades vs backtesting.py ({tag})", res.n_trades, bt_n, last_open, finalize)
    )
    ours_ret = res.metrics["total_return"]
    name = f"total return vs backtesting.py ({tag}, whole units)"
    if last_open and finalize:
        # backtesting.py's finalize_trades with trade_on_close closes a trade still open at the
        # end at the *second-to-last* close (its broker re-runs on the last bar's data using
        # the previous close); compare with our equity at that bar.
        ours_ret = float(res.equity.iloc[-2]) / CASH - 1.0
        name += "; ours one bar before the end (open final trade)"
    checks.append(check_return(name, ours_ret, bt_ret, bt_rounding_bound(res)))
    return {
        "bars": plan.bt_bars,
        **timing_fields(t),
        "speedup": t["backtesting"]["median_s"] / t["ours"]["median_s"],
        "finalize_trades": finalize,
    }


def bench_cold(plan: Plan) -> dict[str, Any]:
    """2 and 4. Fresh processes: imports + (cached) JIT + one backtest, and their memory."""
    n = plan.single_bars

    def runs(who: str) -> list[dict[str, Any]]:
        out = [cold_run(who, n, FAST, SLOW, CASH) for _ in range(2)]
        if out[-1]["numba_compiled"]:
            # The cache-filled run compiled after all: a source changed after run 1 wrote the
            # cache (someone editing the engine during the benchmark). Once more; if it still
            # compiles, the report says so next to the figure.
            out.append(cold_run(who, n, FAST, SLOW, CASH))
        return out

    ours, vbt = runs("ours"), runs("vectorbt")
    empty = None
    if plan.empty_cache_run:
        # A new, empty numba cache: what the very first backtest after installing costs.
        with tempfile.TemporaryDirectory(prefix="tr-numba-") as cache_dir:
            empty = cold_run("ours", n, FAST, SLOW, CASH, {"NUMBA_CACHE_DIR": cache_dir})
    return {"bars": plan.single_bars, "ours": ours, "vectorbt": vbt, "ours_empty_cache": empty}


def sweep_combos() -> list[tuple[int, int]]:
    return [(f, s) for f in GRID["fast"] for s in GRID["slow"] if f < s]


def bench_sweep(plan: Plan, checks: list[dict[str, Any]]) -> dict[str, Any]:
    """3. The 90-combination grid: run_sweep vs vectorbt (all columns at once) vs NumPy."""
    from traderunner.engine import run_sweep

    data = make_ohlcv(plan.sweep_bars)
    frame, close = to_frame(data), peer_frame(data)["close"]
    combos = sweep_combos()
    t = interleaved_times(
        {
            "ours": lambda: run_sweep("sma_cross", frame, GRID, workers=2, **OURS_OPTIONS),
            "ours_1t": lambda: run_sweep("sma_cross", frame, GRID, workers=1, **OURS_OPTIONS),
            "vectorbt": lambda: _peers.vbt_sweep(close, combos, CASH),
            "numpy": lambda: _peers.numpy_sweep(data["close"], combos),
        },
        plan.sweep_repeats,
    )
    sweep = t["ours"]["result"]
    (vbt_ret, vbt_n), (np_ret, np_n) = t["vectorbt"]["result"], t["numpy"]["result"]
    ours_s, vbt_s, np_s = (t[k]["median_s"] for k in ("ours", "vectorbt", "numpy"))
    one_s = t["ours_1t"]["median_s"]
    by_combo = {(int(r["fast"]), int(r["slow"])): r for r in sweep.rows}
    tag = f"sweep, {plan.sweep_bars:,} bars"
    checks.append(
        {
            "name": f"combinations run ({tag})",
            "passed": sorted(by_combo) == sorted(combos) and len(sweep.rows) == len(combos),
            "ours": len(sweep.rows),
            "peer": len(combos),
            "tolerance": "equal",
        }
    )
    ours_ret = np.array([by_combo.get(c, {}).get("total_return", np.nan) for c in combos])
    ours_n = np.array([by_combo.get(c, {}).get("trades", -1) for c in combos], dtype=np.int64)
    for peer, ret, count in (("vectorbt", vbt_ret, vbt_n), ("numpy", np_ret, np_n)):
        diff = np.abs(np.log1p(ours_ret) - np.log1p(ret))
        bad = ~(diff <= EXACT_TOL)
        checks.append(
            {
                "name": f"total return vs {peer}, every combo ({tag})",
                "passed": not bad.any(),
                "ours": f"{int(bad.sum())} of {len(combos)} combos differ",
                "peer": "" if not bad.any() else f"first: {combos[int(np.argmax(bad))]}",
                "diff": float(np.nanmax(diff)) if np.isfinite(diff).any() else math.inf,
                "tolerance": f"|log growth diff| <= {EXACT_TOL:.2e}",
            }
        )
        off = ours_n != count
        checks.append(
            {
                "name": f"trades vs {peer}, every combo ({tag})",
                "passed": not off.any(),
                "ours": f"{int(off.sum())} of {len(combos)} combos differ",
                "peer": ""
                if not off.any()
                else (
                    f"first: {combos[int(np.argmax(off))]} ours {ours_n[np.argmax(off)]} "
                    f"vs {count[np.argmax(off)]}"
                ),
                "tolerance": "equal (both count a trade still open at the end)",
            }
        )
    n = len(combos)
    return {
        "bars": plan.sweep_bars,
        "combos": n,
        "skipped": sweep.skipped,
        "workers": 2,
        **timing_fields(t),
        "ours_cps": n / ours_s,
        "ours_1t_cps": n / one_s,
        "speedup_1t_vs_vectorbt": vbt_s / one_s,
        "vectorbt_cps": n / vbt_s,
        "numpy_cps": n / np_s,
        "speedup_vs_vectorbt": vbt_s / ours_s,
        "speedup_vs_numpy": np_s / ours_s,
    }


def check_cold(cold: dict[str, Any], single: dict[str, Any], checks: list[dict[str, Any]]) -> None:
    """The fresh-process runs must have computed what the warm in-process run computed."""
    runs = [*cold["ours"], *([cold["ours_empty_cache"]] if cold["ours_empty_cache"] else [])]
    same = all(r["trades"] == single["trades"] for r in runs) and all(
        abs(math.log1p(r["total_return"]) - math.log1p(single["total_return"])) <= EXACT_TOL
        for r in runs
    )
    checks.append(
        {
            "name": "fresh-process runs give the in-process result (ours)",
            "passed": same,
            "ours": [r["trades"] for r in runs],
            "peer": single["trades"],
            "tolerance": f"equal trades, returns within {EXACT_TOL:.0e}",
        }
    )


def goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal with the measured value and whether it was met."""
    # The last fresh-process run is the cache-filled one (see bench_cold).
    cold_s = report["cold"]["ours"][-1]["import_run_s"]
    peak = report["cold"]["ours"][-1]["peak_mb"]
    return [
        {
            "name": "warm backtest speed-up vs vectorbt",
            "goal": f">= {GOALS['single_speedup']:g}x",
            "value": report["single"]["speedup"],
            "met": report["single"]["speedup"] >= GOALS["single_speedup"],
        },
        {
            "name": "cold first backtest (fresh process, cache filled)",
            "goal": f"< {GOALS['cold_s']:g} s",
            "value": cold_s,
            "met": cold_s < GOALS["cold_s"],
        },
        {
            "name": "sweep speed-up vs vectorbt",
            "goal": f">= {GOALS['sweep_speedup']:g}x on one thread",
            "value": report["sweep"]["speedup_1t_vs_vectorbt"],
            "met": report["sweep"]["speedup_1t_vs_vectorbt"] >= GOALS["sweep_speedup"],
        },
        {
            "name": "peak RSS of the backtest process",
            "goal": f"< {GOALS['peak_mb']:g} MB",
            "value": peak,
            "met": peak < GOALS["peak_mb"],
        },
    ]


def profile(plan: Plan, path: Path) -> None:
    """cProfile of our warm backtest and sweep, top functions by own and cumulative time.

    The sweep's work runs on its thread pool, which a main-thread profile does not see: every
    thread started during the profile gets its own profiler (started by its first profile
    event) and all of them are merged.
    """
    import cProfile
    import io
    import pstats
    import threading

    from traderunner.engine import run_backtest, run_sweep

    single = candles_of(make_ohlcv(plan.single_bars))
    swept = candles_of(make_ohlcv(plan.sweep_bars))
    jobs = {
        f"run_backtest, {plan.single_bars:,} bars, 5 runs": (
            5,
            lambda: run_backtest("sma_cross", single, {"fast": FAST, "slow": SLOW}, **OURS_OPTIONS),
        ),
        f"run_sweep, {len(sweep_combos())} combos on {plan.sweep_bars:,} bars, 3 runs, all "
        "threads": (3, lambda: run_sweep("sma_cross", swept, GRID, **OURS_OPTIONS)),
    }
    out = io.StringIO()
    for title, (times, job) in jobs.items():
        job()  # warm: compile / load the cache outside the profile
        profs = [cProfile.Profile()]
        lock = threading.Lock()

        def start_thread_profile(
            *_: Any, profs: list[cProfile.Profile] = profs, lock: threading.Lock = lock
        ) -> None:
            prof = cProfile.Profile()
            with lock:
                profs.append(prof)
            prof.enable()  # replaces this hook for the rest of the thread's life

        threading.setprofile(start_thread_profile)
        profs[0].enable()
        try:
            for _ in range(times):
                job()
        finally:
            profs[0].disable()
            threading.setprofile(None)
        stats = pstats.Stats(profs[0], stream=out)
        for prof in profs[1:]:
            stats.add(prof)
        for order in ("tottime", "cumulative"):
            out.write(f"=== {title}: by {order} ({len(profs)} threads profiled) ===\n")
            stats.sort_stats(order).print_stats(25)
    path.write_text(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--profile", action="store_true", help="also write a cProfile report")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    try:
        import vectorbt  # noqa: F401
        from backtesting import Backtest  # noqa: F401

        import traderunner.engine  # noqa: F401
    except ImportError as exc:
        print(
            f"error: {exc}; install the contestants with `.venv/bin/pip install -e '.[bench]'`",
            file=sys.stderr,
        )
        return 2
    started = time.perf_counter()
    checks: list[dict[str, Any]] = []
    report: dict[str, Any] = {
        "mode": plan.mode,
        "machine": machine_info(),
        "load_before": list(os.getloadavg()),
    }
    report["setup"] = {
        "rule": f"SMA {FAST}/{SLOW} crossover, long from a crossing above to one below, "
        "close fill, DataFrame input for ours",
        "cash": CASH,
        "grid": GRID,
        "plan": plan.__dict__,
    }
    print(f"[{plan.mode}] cold starts and memory (fresh processes) ...", flush=True)
    report["cold"] = bench_cold(plan)
    print(f"[{plan.mode}] warm backtest on {plan.single_bars:,} bars ...", flush=True)
    report["single"] = bench_single(plan, checks)
    check_cold(report["cold"], report["single"], checks)
    print(f"[{plan.mode}] backtesting.py on {plan.bt_bars:,} bars ...", flush=True)
    report["backtesting_py"] = bench_backtesting_py(plan, checks)
    print(
        f"[{plan.mode}] sweep of {len(sweep_combos())} combos on {plan.sweep_bars:,} bars ...",
        flush=True,
    )
    report["sweep"] = bench_sweep(plan, checks)
    report["checks"] = checks
    report["checks_passed"] = all(c["passed"] for c in checks)
    report["goals"] = goals(report)
    report["load_after"] = list(os.getloadavg())
    args.out.mkdir(parents=True, exist_ok=True)
    # A smoke run must not overwrite the full figures (or profile) the README quotes.
    stem = "engine" if plan.mode == "full" else "engine-quick"
    if args.profile or not all(g["met"] for g in report["goals"]):
        prof_path = args.out / f"{stem}_profile.txt"
        profile(plan, prof_path)
        report["profile"] = prof_path.name
    report["elapsed_s"] = time.perf_counter() - started
    _report.write(report, args.out / f"{stem}.json", args.out / f"{stem}.md")
    print(_report.summary(report))
    return 0 if report["checks_passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
