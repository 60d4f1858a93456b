"""``traderunner up`` as a user runs it: a real process tree of Redis, worker, stream, trader,
dashboard and Flower under supervisord, the demo live strategies trading, killed children
restarted, SIGTERM stopping everything, a second ``up`` finding the first one's data (and
adding no demo strategy twice), and a child that keeps dying given up on."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.ophelpers import UpProcess, alive, descendants
from traderunner.config import load_settings
from traderunner.ops.supervisor import Supervisor
from traderunner.store import Store

pytestmark = pytest.mark.slow

READY = "Ctrl-C stops everything"
DEMO_LIVE = {"demo-sma_cross", "demo-rsi_reversion"}


def _states(data_dir: Path) -> dict[str, str]:
    """What up's supervisord says of each child (its XML-RPC socket)."""
    return {n: s.state for n, s in Supervisor(data_dir / "up", []).states().items()}


def _demo_orders(up: UpProcess, timeout: float = 120.0) -> list[dict[str, object]]:
    """``traderunner orders --json`` until it lists orders of the demo live strategies."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        proc = subprocess.run(
            [sys.executable, "-m", "traderunner", "orders", "--json"],
            env=up.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        last = proc.stdout + proc.stderr
        if proc.returncode == 0:
            orders = [o for o in json.loads(proc.stdout)["orders"] if o["live"] in DEMO_LIVE]
            if orders:
                return orders
        time.sleep(1.0)
    raise AssertionError(f"no orders of the demo live strategies within {timeout:.0f}s: {last}")


def _pid_of(up: UpProcess, needle: str) -> int:
    assert up.proc is not None
    found = [p for p, cmd in descendants(up.proc.pid).items() if needle in cmd]
    assert found, f"no {needle!r} under up: {descendants(up.proc.pid)}"
    return min(found)  # the parent of a process group (the worker's main process, say)


def _wait_gone(pids: list[int], timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.2)
    return [p for p in pids if alive(p)]


def test_up_supervises_restarts_and_stops_everything(tmp_path: Path) -> None:
    # A fast replay, so the demo strategies trade within seconds (the default is 60x).
    up = UpProcess.create(tmp_path / "data", "--replay-speed", "100000").start()
    try:
        out = up.wait_for(READY)
        names = ("redis-durable", "redis-cache", "worker", "stream", "trader", "dashboard")
        for name in (*names, "flower"):
            assert f"{name}: healthy" in out
        assert "stream: healthy (replaying the live strategies' stored candles at 100000x)" in out
        assert "trader: healthy (paper trading the live strategies' signals)" in out
        assert "loaded SYNTHETIC demo candles" in out
        assert "added demo live strategies (paper account demo): demo-sma_cross, " in out

        # The stream and the trader run, and the demo strategies trade in the demo account.
        orders = _demo_orders(up)
        assert {o["account"] for o in orders} == {"demo"}
        states = _states(tmp_path / "data")
        assert states["stream"] == "RUNNING" and states["trader"] == "RUNNING", states
        line = next(ln for ln in out.splitlines() if ln.startswith("dashboard login: admin / "))
        password = line.split(" / ", 1)[1].split()[0]
        secret = tmp_path / "data" / "admin.password"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert secret.read_text().strip() == f"admin:{password}"
        dash = f"http://127.0.0.1:{up.dashboard_port}"
        assert httpx.get(f"{dash}/healthz", timeout=5).status_code == 200

        # A child killed outright is reported and restarted, and serves again.
        victim = _pid_of(up, "traderunner dashboard")
        mark = len(up.output)
        os.kill(victim, signal.SIGKILL)
        up.wait_for("dashboard died", timeout=30, after=mark)
        up.wait_for("dashboard is running again", timeout=60, after=mark)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{dash}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError("the restarted dashboard never answered /healthz")
        assert _pid_of(up, "traderunner dashboard") != victim

        # SIGTERM: everything under up goes, and up exits 0.
        assert up.proc is not None
        tree = list(descendants(up.proc.pid))
        # supervisord, 2 valkey, worker (+ pool), stream, trader, dashboard, flower (+1)
        assert len(tree) >= 8
        assert any(
            "traderunner stream --replay" in cmd for cmd in descendants(up.proc.pid).values()
        )
        assert up.terminate() == 0
        assert _wait_gone(tree) == []
        assert "stopped" in up.output.splitlines()[-1]
    finally:
        up.kill_tree()

    # A second up finds the first one's data: same users, no new password, no demo reload.
    again = UpProcess.create(tmp_path / "data")
    again.env = up.env  # same ports and data directory
    again.dashboard_port, again.flower_port = up.dashboard_port, up.flower_port
    again.start()
    try:
        out = again.wait_for(READY)
        assert "dashboard login: admin, password in" in out
        assert "loaded SYNTHETIC demo candles" not in out
        assert "added demo live strategies" not in out
        assert "stream: healthy" in out and "trader: healthy" in out
        assert password not in out
        login = httpx.post(
            f"http://127.0.0.1:{again.dashboard_port}/login",
            data={"username": "admin", "password": password},
            timeout=10,
        )
        assert login.status_code == 303  # a wrong password gets the form again (200)
        settings = load_settings(data_dir=tmp_path / "data")
        store = Store.from_settings(settings)
        try:
            assert [u.name for u in store.users.list()] == ["admin"]
            assert len(store.candles.list_series()) == 3
            assert sorted(s.name for s in store.live.list()) == sorted(DEMO_LIVE)
        finally:
            store.close()
        assert again.terminate() == 0
    finally:
        again.kill_tree()


def test_a_child_that_keeps_dying_is_given_up_and_the_rest_run(tmp_path: Path) -> None:
    up = UpProcess.create(tmp_path / "data")
    # The dashboard's port is taken: every start of it fails.
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", up.dashboard_port))
    blocker.listen()
    up.start()
    try:
        out = up.wait_for(READY, timeout=400)
        assert "dashboard keeps dying" in out
        assert "given up" in out
        assert "worker: healthy" in out and "flower: healthy" in out
        assert up.proc is not None and up.proc.poll() is None  # up itself keeps running
        assert up.terminate() == 0
    finally:
        blocker.close()
        up.kill_tree()
