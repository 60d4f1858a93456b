"""Turn a benchmark report dict into engine.json, engine.md and the printed summary."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def json_safe(value: Any) -> Any:
    """NaN and infinities as None, NumPy scalars as Python numbers, recursively."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _s(x: float) -> str:
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def _x(ratio: float, better: str = "faster", worse: str = "slower") -> str:
    """``peer / ours`` as "4.2x faster" or, below 1, "2.3x slower" (never "0.4x faster")."""
    return f"{ratio:.1f}x {better}" if ratio >= 1 else f"{1 / ratio:.1f}x {worse}"


def _yes(met: bool | None) -> str:
    return "—" if met is None else ("yes" if met else "**NO**")


def _compiled_note(*runs: dict[str, Any]) -> str:
    """A warning when a run meant to load numba's cache compiled anyway."""
    if any(r.get("numba_compiled") for r in runs):
        return " (**still compiled: numba cache invalidated during the run**)"
    return ""


def rows(report: dict[str, Any]) -> list[tuple[str, str, str, str, str, str, str]]:
    """(measurement, ours, peer, peer figure, ratio, goal, met) for the figures table."""
    single, bt, cold, sweep = (report[k] for k in ("single", "backtesting_py", "cold", "sweep"))
    goals = {g["name"]: g for g in report["goals"]}
    g_single = goals["warm backtest speed-up vs vectorbt"]
    g_cold = goals["cold first backtest (fresh process, cache filled)"]
    g_sweep = goals["sweep speed-up vs vectorbt"]
    g_mem = goals["peak RSS of the backtest process"]
    reps = report["setup"]["plan"]["repeats"]
    bt_reps = report["setup"]["plan"]["bt_repeats"]
    sw_reps = report["setup"]["plan"]["sweep_repeats"]
    ours_c, vbt_c = cold["ours"], cold["vectorbt"]
    n = f"{single['bars']:,}"
    out = [
        (
            f"1. warm backtest, {n} M5 bars, DataFrame input, alternating (median of {reps})",
            _s(single["ours_s"]),
            "vectorbt",
            _s(single["vectorbt_s"]),
            f"{_x(single['speedup'])} (fastest runs: {single['speedup_of_minimums']:.1f}x)",
            g_single["goal"],
            _yes(g_single["met"]),
        ),
        (
            "1. same, ours given CandleArrays instead of a DataFrame (alternating)",
            _s(single["ours_arrays_s"]),
            "vectorbt",
            _s(single["vectorbt_s"]),
            _x(single["speedup_arrays"]),
            "—",
            "—",
        ),
        (
            f"1. same, separate loops ({reps} runs of each library in a block, warm memory)",
            _s(single["separate_ours_s"]),
            "vectorbt",
            _s(single["separate_vectorbt_s"]),
            _x(single["speedup_separate"]),
            "—",
            "—",
        ),
        (
            f"1b. warm backtest, {bt['bars']:,} bars (median of {bt_reps})",
            _s(bt["ours_s"]),
            "backtesting.py",
            _s(bt["backtesting_s"]),
            _x(bt["speedup"]),
            "—",
            "—",
        ),
        (
            f"2. cold, 1st fresh process (may compile), import + run, {n} bars",
            _s(ours_c[0]["import_run_s"]),
            "vectorbt",
            _s(vbt_c[0]["import_run_s"]),
            _x(vbt_c[0]["import_run_s"] / ours_c[0]["import_run_s"]),
            "—",
            "—",
        ),
        (
            f"2. cold, fresh process with numba's cache filled, import + run, {n} bars"
            + _compiled_note(ours_c[-1], vbt_c[-1]),
            _s(ours_c[-1]["import_run_s"]),
            "vectorbt",
            _s(vbt_c[-1]["import_run_s"]),
            _x(vbt_c[-1]["import_run_s"] / ours_c[-1]["import_run_s"]),
            g_cold["goal"],
            _yes(g_cold["met"]),
        ),
        (
            "2. cold, same process, whole-process wall time (incl. interpreter and data)",
            _s(ours_c[-1]["process_wall_s"]),
            "vectorbt",
            _s(vbt_c[-1]["process_wall_s"]),
            _x(vbt_c[-1]["process_wall_s"] / ours_c[-1]["process_wall_s"]),
            "—",
            "—",
        ),
    ]
    if cold.get("ours_empty_cache"):
        e = cold["ours_empty_cache"]
        out.append(
            (
                "2. cold, empty numba cache (first run after install), import + run",
                _s(e["import_run_s"]),
                "—",
                "—",
                "—",
                "—",
                "—",
            )
        )
    out += [
        (
            f"3. sweep, {sweep['combos']} combos on {sweep['bars']:,} bars "
            f"(ours on 1 thread, median of {sw_reps})",
            f"{sweep['ours_1t_cps']:,.0f} combos/s",
            "vectorbt",
            f"{sweep['vectorbt_cps']:,.0f} combos/s",
            _x(sweep["speedup_1t_vs_vectorbt"]),
            g_sweep["goal"],
            _yes(g_sweep["met"]),
        ),
        (
            f"3. sweep, same grid, ours on {sweep['workers']} threads",
            f"{sweep['ours_cps']:,.0f} combos/s",
            "vectorbt",
            f"{sweep['vectorbt_cps']:,.0f} combos/s",
            _x(sweep["speedup_vs_vectorbt"]),
            "—",
            "—",
        ),
        (
            f"3. sweep, same grid, ours on {sweep['workers']} threads",
            f"{sweep['ours_cps']:,.0f} combos/s",
            "plain NumPy loop",
            f"{sweep['numpy_cps']:,.0f} combos/s",
            _x(sweep["speedup_vs_numpy"]),
            "—",
            "—",
        ),
        (
            f"4. peak RSS of a fresh process running the {n}-bar backtest (after imports + data)",
            f"{ours_c[-1]['peak_mb']:.0f} MB ({ours_c[-1]['rss_setup_mb']:.0f} MB)",
            "vectorbt",
            f"{vbt_c[-1]['peak_mb']:.0f} MB ({vbt_c[-1]['rss_setup_mb']:.0f} MB)",
            _x(vbt_c[-1]["peak_mb"] / ours_c[-1]["peak_mb"], "less", "more"),
            g_mem["goal"],
            _yes(g_mem["met"]),
        ),
    ]
    return out


def _fmt(value: Any) -> str:
    """A table cell: short floats, and ``|`` escaped so it cannot split the cell."""
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|")


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    v = m["versions"]
    lines = [
        f"# Engine benchmark: traderunner vs vectorbt vs backtesting.py ({report['mode']})",
        "",
    ]
    if not report["checks_passed"]:
        failed = [c["name"] for c in report["checks"] if not c["passed"]]
        lines += [
            "> **CORRECTNESS CHECK FAILED: the contestants did not compute the same backtest, "
            "so the timings below compare different work.** Failed: " + "; ".join(failed),
            "",
        ]
    lines += [
        f"{m['date']} · {m['cpu']} · {m['cpu_count']} CPUs · Python {m['python']} · "
        f"traderunner {v['traderunner']} · numpy {v['numpy']} · numba {v['numba']} · "
        f"pandas {v['pandas']} · vectorbt {v['vectorbt']} · backtesting.py {v['backtesting']}",
        "",
        f"Load average before / after: {report['load_before'][0]:.2f} / "
        f"{report['load_after'][0]:.2f} (other work on the machine shows up here). "
        f"Rule: {report['setup']['rule']}; same synthetic data for everyone. "
        f"Whole run: {report['elapsed_s']:.0f} s.",
        "",
    ]
    if report["mode"] != "full":
        lines += [
            "Quick mode: smaller sizes and fewer repeats. The goals are set for the full "
            "sizes, so *met* here is only indicative.",
            "",
        ]
    lines += [
        "| measurement | ours | peer | peer figure | ratio | goal | met |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows(report)]
    lines += [
        "",
        "## Correctness checks",
        "",
        "| check | ours | peer | diff | tolerance | result |",
        "|---|---|---|---|---|---|",
    ]
    for c in report["checks"]:
        lines.append(
            f"| {_fmt(c['name'])} | {_fmt(c['ours'])} | {_fmt(c['peer'])} | "
            f"{_fmt(c.get('diff', ''))} | {_fmt(c['tolerance'])} | "
            f"{'pass' if c['passed'] else '**FAIL**'} |"
        )
    lines += [
        "",
        "## Fresh-process runs",
        "",
        "| contestant | run | imports + input s | backtest s | import + run s | "
        "process wall s | RSS after setup MB | peak RSS MB | numba: loaded from cache / "
        "compiled on a cache miss / compiled, never cached |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    cold = report["cold"]
    runs: list[tuple[str, str, dict[str, Any]]] = [
        ("ours", str(i + 1), r) for i, r in enumerate(cold["ours"])
    ]
    runs += [("vectorbt", str(i + 1), r) for i, r in enumerate(cold["vectorbt"])]
    if cold.get("ours_empty_cache"):
        runs.append(("ours", "empty cache", cold["ours_empty_cache"]))
    for who, k, r in runs:
        lines.append(
            f"| {who} | {k} | {r['import_s']:.3f} | {r['run_s']:.3f} | {r['import_run_s']:.3f} "
            f"| {r['process_wall_s']:.3f} | {r['rss_setup_mb']:.0f} | {r['peak_mb']:.0f} "
            f"| {r['numba_loaded']} / {r['numba_compiled']} / {r['numba_uncached']} |"
        )
    missed = [g for g in report["goals"] if not g["met"]]
    if missed:
        lines += ["", "## Goals missed", ""]
        lines += [f"- **{g['name']}**: {g['value']:.3g} (goal {g['goal']})" for g in missed]
    if report.get("profile"):
        lines += ["", f"Profile of our warm runs: `{report['profile']}`."]
    return "\n".join(lines) + "\n"


def write(report: dict[str, Any], json_path: Path, md_path: Path) -> None:
    json_path.write_text(json.dumps(json_safe(report), indent=2) + "\n")
    md_path.write_text(markdown(report))


def summary(report: dict[str, Any]) -> str:
    """A short plain-text table for the terminal."""
    table = [(r[0], r[1], f"{r[2]}: {r[3]}", r[4], r[6]) for r in rows(report)]
    widths = [max(len(t[i]) for t in table) for i in range(5)]
    out = [
        "",
        "  ".join(
            h.ljust(w)
            for h, w in zip(
                ("measurement", "ours", "peer", "ratio", "goal met"), widths, strict=True
            )
        ),
    ]
    out += ["  ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)) for t in table]
    failed = [c for c in report["checks"] if not c["passed"]]
    if failed:
        out.append("")
        out += [
            f"CHECK FAILED: {c['name']}: ours {c['ours']} vs peer {c['peer']} ({c['tolerance']})"
            for c in failed
        ]
    else:
        out.append(f"\nall {len(report['checks'])} correctness checks passed")
    out += [
        f"GOAL MISSED: {g['name']}: {g['value']:.3g} (goal {g['goal']})"
        for g in report["goals"]
        if not g["met"]
    ]
    return "\n".join(out)
