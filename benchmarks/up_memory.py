"""Memory of the whole ``traderunner up``: PSS per process and in sum, idle and after a sweep.

PSS (proportional set size, from ``/proc/PID/smaps_rollup``) counts a page shared by N
processes as 1/N in each, so the sum over the tree is what the deployment really takes: pages
a prefork worker's pool children share with their parent count once. RSS is shown beside it.

Run: ``.venv/bin/python benchmarks/up_memory.py`` (about 2-4 minutes). It starts ``up`` in a
fresh temporary data directory on free ports (concurrency = cores), samples every process
once all are healthy and idle, submits a 1,000-combination sweep (50 fast x 20 slow SMA
windows on the three demo symbols), waits for it, samples again, and stops ``up``. It also
records which processes have the engine stack (numba / llvmlite) mapped: only the worker's
pool processes should. Writes ``results/up_memory.json`` and ``results/up_memory.md``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import RESULTS_DIR, machine_info

GOAL_IDLE_MB = 1024.0
READY = "Ctrl-C stops everything"
DURABLE_PORT = [0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tree(root: int) -> dict[int, int]:
    """pid -> parent pid for ``root`` and every live descendant."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                if fields[0] != "Z":
                    parents[int(entry)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                pass
    found = {root: parents.get(root, 0)}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in found and pid not in found:
                found[pid] = ppid
                grew = True
    return found


def _kb(path: str, field: str) -> int:
    with open(path) as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _role(pid: int, ppid: int, cmd: str, tree: dict[int, int], cmds: dict[int, str]) -> str:
    if "valkey-server" in cmd:
        return "redis-durable" if cmd.endswith(f":{DURABLE_PORT[0]}") else "redis-cache"
    if "supervisord" in cmd:
        return "supervisord"
    if " up " in f"{cmd} ":
        return "up"
    if "traderunner worker" in cmd:
        return (
            "worker pool process" if "traderunner worker" in cmds.get(ppid, "") else "worker main"
        )
    if "traderunner dashboard" in cmd:
        return "dashboard"
    if "flower" in cmd:
        return "flower"
    for name in ("stream", "trader"):
        if f"traderunner {name}" in cmd:
            return name
    return cmd[:40]


def sample(root: int) -> list[dict[str, Any]]:
    tree = _tree(root)
    cmds: dict[int, str] = {}
    for pid in tree:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmds[pid] = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            cmds[pid] = ""
    rows = []
    for pid, ppid in sorted(tree.items()):
        try:
            pss = _kb(f"/proc/{pid}/smaps_rollup", "Pss")
            rss = _kb(f"/proc/{pid}/smaps_rollup", "Rss")
            with open(f"/proc/{pid}/maps") as fh:
                maps = fh.read()
        except OSError:
            continue
        rows.append(
            {
                "pid": pid,
                "role": _role(pid, ppid, cmds[pid], tree, cmds),
                "pss_mb": round(pss / 1024, 1),
                "rss_mb": round(rss / 1024, 1),
                "engine_stack_mapped": "llvmlite" in maps or "/numba/" in maps,
            }
        )
    return rows


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="tr-up-mem-"))
    DURABLE_PORT[0] = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADERUNNER_")}
    env.update(
        TRADERUNNER_DATA_DIR=str(root / "data"),
        TRADERUNNER_REDIS_PORT=str(DURABLE_PORT[0]),
        TRADERUNNER_CACHE_PORT=str(_free_port()),
    )
    log = root / "up.log"
    cmd = [
        sys.executable, "-m", "traderunner", "up",
        "--dashboard-port", str(_free_port()), "--flower-port", str(_free_port()),
    ]  # fmt: skip
    with open(log, "wb") as out:
        up = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 400
        while READY not in log.read_text(errors="replace"):
            if up.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"up did not become ready:\n{log.read_text()}")
            time.sleep(0.5)
        time.sleep(10)  # settle: pool processes warmed up, first Flower poll done
        idle = sample(up.pid)
        sweep = [
            sys.executable, "-m", "traderunner", "sweep", "sma_cross",
            "--symbols", "AAPL,MSFT,TSLA", "--timeframe", "M5",
            "--grid", "fast=5:54:1", "--grid", "slow=60:250:10",
            "--submit", "--top", "3",
        ]  # fmt: skip
        started = time.monotonic()
        ran = subprocess.run(sweep, env=env, capture_output=True, text=True, timeout=1800)
        sweep_s = time.monotonic() - started
        if ran.returncode != 0:
            raise SystemExit(f"the sweep failed ({ran.returncode}): {ran.stderr[-2000:]}")
        time.sleep(5)
        after = sample(up.pid)
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(300)
    result = {
        "machine": machine_info(),
        "cores": os.cpu_count(),
        "goal_idle_pss_mb": GOAL_IDLE_MB,
        "idle": idle,
        "after_sweep": after,
        "idle_total_pss_mb": round(sum(r["pss_mb"] for r in idle), 1),
        "after_sweep_total_pss_mb": round(sum(r["pss_mb"] for r in after), 1),
        "sweep_combos": 1000,
        "sweep_seconds": round(sweep_s, 1),
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "up_memory.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Memory of `traderunner up` (PSS from /proc/PID/smaps_rollup)",
        "",
        f"{os.cpu_count()} cores, worker concurrency = cores. Written by "
        "`benchmarks/up_memory.py`.",
        "",
        "| process | PSS idle (MB) | RSS idle (MB) | PSS after a 1,000-combo sweep (MB) "
        "| engine stack mapped |",
        "|---|---|---|---|---|",
    ]
    by_pid = {r["pid"]: r for r in after}
    for r in idle:
        later = by_pid.get(r["pid"], {})
        lines.append(
            f"| {r['role']} (pid {r['pid']}) | {r['pss_mb']} | {r['rss_mb']} | "
            f"{later.get('pss_mb', 'gone')} | {'yes' if r['engine_stack_mapped'] else 'no'} |"
        )
    goal = "met" if result["idle_total_pss_mb"] < GOAL_IDLE_MB else "MISSED"
    lines += [
        f"| **sum** | **{result['idle_total_pss_mb']}** | | "
        f"**{result['after_sweep_total_pss_mb']}** | |",
        "",
        f"Goal: idle sum under {GOAL_IDLE_MB:.0f} MB of PSS: **{goal}**. The sweep "
        f"(1,000 combinations x 3 symbols) took {result['sweep_seconds']} s through `up`'s "
        "worker.",
        "",
    ]
    (RESULTS_DIR / "up_memory.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
