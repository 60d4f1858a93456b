"""The CLI behaves the same everywhere: --symbols (with --symbol for one), --json on every
command that prints a result, and commands that only read start no server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from tests.clihelpers import run_process
from tests.redishelpers import embedded_env

if TYPE_CHECKING:
    from conftest import Cli


def _daily_csv(path: Path, n: int = 40) -> Path:
    rows = ["time,open,high,low,close,volume"]
    for i in range(n):
        price = 100 + i % 7
        rows.append(
            f"2024-01-{1 + i % 28:02d}T00:00:00Z,{price},{price + 1},{price - 1},{price},10"
        )
    path.write_text("\n".join(rows[: 28 + 1]) + "\n")  # 28 distinct days
    return path


def test_import_and_demo_print_json_and_take_symbols_or_symbol(
    empty_cli: Cli, tmp_path: Path
) -> None:
    csv = _daily_csv(tmp_path / "prices.csv")
    for flag, name in (("--symbol", "xyz"), ("--symbols", "abc")):
        ran = empty_cli("data", "import", str(csv), flag, name, "-t", "D1", "--json")
        assert ran.code == 0, ran.err
        body = ran.json()
        assert body["series"]["symbol"] == name.upper() and body["series"]["bars"] == 28
        assert body["imported"] == str(csv)
    two = empty_cli("data", "import", str(csv), "--symbols", "A,B", "-t", "D1")
    assert two.code == 2 and len(two.err_lines) == 1
    assert "takes one symbol" in two.err_lines[0]
    demo = empty_cli("data", "demo", "--symbols", "qqq", "--days", "2", "-t", "H1", "--json")
    assert demo.code == 0, demo.err
    body = demo.json()
    assert body["synthetic"] is True and [s["symbol"] for s in body["series"]] == ["QQQ"]
    assert "SYNTHETIC" in demo.err  # the label goes to stderr, stdout stays one JSON object
    stored = {s["symbol"] for s in empty_cli("data", "list", "--json").json()["series"]}
    assert stored == {"XYZ", "ABC", "QQQ"}


def test_backtest_on_a_file_takes_symbols_as_the_files_name(empty_cli: Cli, tmp_path: Path) -> None:
    csv = _daily_csv(tmp_path / "prices.csv")
    ran = empty_cli(
        "backtest", "sma_cross", "--data", str(csv), "--symbols", "mine", "-t", "D1", "-p",
        "fast=2", "-p", "slow=5", "--no-save", "--json",
    )  # fmt: skip
    assert ran.code == 0, ran.err
    assert ran.json()["symbols"] == ["MINE"]


def test_readers_start_no_server_and_writers_say_they_did(tmp_path: Path) -> None:
    env = embedded_env(tmp_path / "data")

    def cli(*args: str) -> tuple[int, str, str]:
        ran = run_process(args, env, timeout=120)
        return ran.code, ran.out, ran.err

    def running() -> dict[str, bool]:
        code, out, _ = cli("redis", "status", "--json")
        assert code == 0
        return {s["role"]: s["running"] for s in json.loads(out)["servers"]}

    code, out, err = cli("jobs", "list", "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert (listed["jobs"], listed["total"]) == ([], 0)
    assert "not running" in err and "live progress" in err
    assert running() == {"durable": False, "cache": False}  # a read started nothing
    assert cli("data", "demo", "--symbols", "AAA", "--days", "2")[0] == 0
    try:
        submit = ("backtest", "sma_cross", "--symbols", "AAA", "--submit", "--no-follow")
        code, out, err = cli(*submit, "--json")
        assert code == 0, err
        job = json.loads(out)
        assert "started the embedded Redis servers" in err and "traderunner redis stop" in err
        assert "no worker is running" in err  # queued all the same
        assert running() == {"durable": True, "cache": True}
        code, out, err = cli("jobs", "show", job["id"], "--json")
        assert code == 0 and "not running" not in err and "started" not in err
        code, out, _ = cli("jobs", "cancel", job["id"], "--json")
        assert code == 0 and json.loads(out)["state"] == "cancelled"
        code, out, _ = cli("jobs", "retry", job["id"], "--json")
        assert code == 0 and json.loads(out)["state"] == "queued"
        code, out, _ = cli("workers", "--json")
        assert code == 0 and json.loads(out) == {"workers": []}
    finally:
        code, out, err = cli("redis", "stop", "--json")
    assert code == 0, err
    assert json.loads(out) == {
        "servers": [{"role": "durable", "stopped": True}, {"role": "cache", "stopped": True}]
    }
    code, out, err = cli("redis", "start", "--json")
    assert code == 0 and {s["role"]: s["running"] for s in json.loads(out)["servers"]} == {
        "durable": True,
        "cache": True,
    }
    assert cli("redis", "stop")[0] == 0
