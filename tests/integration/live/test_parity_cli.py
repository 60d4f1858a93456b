"""Parity from the CLI, as real processes on traderunner's own embedded Valkey servers:
``backtest --json`` and ``live add`` + ``stream --replay`` + ``trader`` (read back with
``orders --json`` and ``account --json``) give the same fills and the same final equity."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from tests.clihelpers import run_process
from tests.redishelpers import embedded_env

pytestmark = pytest.mark.slow

NS = 1_000_000_000


def _ns(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()) * NS


def test_cli_replay_matches_cli_backtest(tmp_path: Path) -> None:
    env = embedded_env(tmp_path / "data")
    args = ["--symbols", "AAPL,MSFT", "--direction", "both", "--fees-bps", "1", "-p", "fast=5"]
    try:
        assert run_process(["data", "demo", "--days", "3"], env).code == 0
        bt = run_process(["backtest", "sma_cross", *args, "--json", "--no-save"], env)
        assert bt.code == 0, bt.err
        want = bt.json()
        added = run_process(["live", "add", "cli", "--strategy", "sma_cross", *args], env)
        assert added.code == 0, added.err
        streamed = run_process(["stream", "--replay"], env, timeout=300)
        assert streamed.code == 0, streamed.err
        assert "signals published" in streamed.err
        traded = run_process(["trader", "--exit-when-idle", "1.5"], env, timeout=300)
        assert traded.code == 0, traded.err
        got = run_process(["orders", "--json"], env).json()
        acct = run_process(["account", "--json"], env).json()
        tail = run_process(["signals", "tail", "-n", "2", "--no-follow", "--json"], env)
    finally:
        run_process(["redis", "stop"], env)
    fills = sorted(
        (f["symbol"], f["bar_ns"], f["side"], f["units"], f["price"], f["fee"])
        for f in got["fills"]
    )
    expected = sorted(
        (f["symbol"], _ns(f["time"]), f["side"], f["size"], f["price"], f["fee"])
        for f in want["fill_list"]
    )
    assert fills == expected
    shown = [json.loads(line) for line in tail.out.splitlines()]
    assert [s["id"] for s in shown] == [o["signal_id"] for o in got["orders"][-2:]]
    assert len(fills) >= 4
    (paper,) = acct["accounts"]
    assert paper["equity"] == pytest.approx(want["metrics"]["end_value"], rel=1e-12)
    assert paper["start_cash"] == pytest.approx(want["metrics"]["start_value"], rel=1e-12)
