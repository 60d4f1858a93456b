"""Bad input: exit code 2 and exactly one clear ``error:`` line on stderr, never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Cli, Ran

# "{A}" stands for the first demo symbol of the data directory.
BT = ("backtest", "sma_cross", "--symbols", "{A}", "--no-save")
SW = ("sweep", "sma_cross", "--symbols", "{A}")


def _assert_one_line_error(ran: Ran, *needles: str) -> None:
    assert ran.code == 2, (ran.code, ran.out, ran.err)
    assert "Traceback" not in ran.err
    assert len(ran.err_lines) == 1, ran.err
    line = ran.err_lines[0]
    assert line.startswith("error: ")
    for needle in needles:
        assert needle in line, line
    assert ran.out == ""  # nothing half-printed on stdout


CASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "unknown strategy": (("backtest", "no_such_thing"), ("no_such_thing", "sma_cross")),
    "unknown parameter": ((*BT, "--param", "speed=3"), ("speed", "fast")),
    "parameter above bounds": ((*BT, "--param", "fast=100000"), ("fast", "maximum")),
    "parameter below bounds": ((*BT, "--param", "slow=0"), ("slow", "minimum")),
    "parameter wrong type": ((*BT, "--param", "fast=ten"), ("fast", "int")),
    "parameter rule": ((*BT, "-p", "fast=60", "-p", "slow=20"), ("fast < slow",)),
    "bad mode": ((*BT, "-p", "mode=crossing"), ("'mode' must be one of cross, regime", "crossing")),
    "sweep bad mode": (
        (*SW, "-g", "fast=5:10:5", "-g", "mode=cross,up"),
        ("mode", "cross, regime"),
    ),
    "param without =": ((*BT, "--param", "fast"), ("name=value",)),
    "param given twice": ((*BT, "-p", "fast=5", "-p", "fast=6"), ("twice",)),
    "bad date": ((*BT, "--from", "2024-13-45"), ("--from", "YYYY-MM-DD")),
    "not a date": ((*BT, "--to", "soon"), ("--to", "soon")),
    "from after to": ((*BT, "--from", "2024-03-02", "--to", "2024-03-01"), ("after",)),
    "empty period": ((*BT, "--from", "1990-01-01", "--to", "1990-01-31"), ("1990",)),
    "unknown symbol": (("backtest", "sma_cross", "--symbols", "NOPE"), ("NOPE",)),
    "unknown timeframe": ((*BT, "--timeframe", "M7"), ("M7", "M5")),
    "timeframe not stored": (("backtest", "sma_cross", "--timeframe", "H4"), ("H4",)),
    "bad fill": ((*BT, "--fill", "sometimes"), ("fill", "next_open")),
    "bad direction": ((*BT, "--direction", "up"), ("direction", "both")),
    "size out of range": ((*BT, "--size", "2"), ("size",)),
    "negative fees": ((*BT, "--fees-bps", "-1"), ("fees_bps",)),
    "stop as percent": ((*BT, "--stop-loss", "5"), ("stop_loss", "0.02")),
    "size not a number": ((*BT, "--size", "abc"), ("--size",)),
    "unknown flag": ((*BT, "--turbo"), ("--turbo",)),
    "missing strategy": (("backtest",), ("strategy",)),
    "unknown command": (("backtset",), ("backtset",)),
    "missing data file": ((*BT, "--data", "/nonexistent/x.csv"), ("x.csv",)),
    "data with two symbols": (
        ("backtest", "sma_cross", "--symbols", "{A},ZZZ", "--data", __file__),
        ("one symbol", "--symbol"),
    ),
    "sweep without grid": (SW, ("--grid",)),
    "sweep bad grid": ((*SW, "--grid", "fast=a:b"), ("a:b",)),
    "sweep grid without =": ((*SW, "--grid", "fast"), ("name=value",)),
    "sweep grid unknown name": ((*SW, "--grid", "speed=1:3:1"), ("speed",)),
    "sweep no valid combo": ((*SW, "-g", "fast=50:60:10", "-g", "slow=20:30:10"), ("grid",)),
    "sweep unknown sort": ((*SW, "--grid", "fast=5:10:5", "--sort", "luck"), ("luck", "sharpe")),
    "sweep csv folder missing": (
        (*SW, "-g", "fast=5:10:5", "--csv", "/nonexistent/dir/out.csv"),
        ("/nonexistent/dir",),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line(demo_cli: Cli, case: str) -> None:
    args, needles = CASES[case]
    first = demo_cli.symbols[0]
    _assert_one_line_error(demo_cli(*(a.replace("{A}", first) for a in args)), *needles)


@pytest.fixture
def bad_csv(tmp_path: Path) -> Path:
    path = tmp_path / "broken.csv"
    path.write_text(
        "time,open,high,low,close,volume\n"
        "2024-01-02T00:00:00Z,10,11,9,10.5,100\n"
        "2024-01-03T00:00:00Z,10.5,oops,10,11,100\n"
    )
    return path


def test_bad_file_for_backtest_and_import(empty_cli: Cli, bad_csv: Path) -> None:
    for args in (
        ("backtest", "sma_cross", "--data", str(bad_csv), "-t", "D1", "--no-save"),
        ("data", "import", str(bad_csv), "--timeframe", "D1"),
    ):
        _assert_one_line_error(empty_cli(*args), "broken.csv")
    # Validation comes first: nothing was imported.
    assert empty_cli("data", "list", "--json").json() == {"series": []}


def test_empty_store_says_how_to_get_data(empty_cli: Cli) -> None:
    _assert_one_line_error(empty_cli("backtest", "sma_cross"), "data demo")


def test_bad_timeframe_for_import_and_demo(empty_cli: Cli, bad_csv: Path) -> None:
    _assert_one_line_error(empty_cli("data", "import", str(bad_csv), "-t", "2w"), "2w")
    _assert_one_line_error(empty_cli("data", "demo", "-t", "fortnight"), "fortnight")


def test_invalid_setting_is_one_line(empty_cli: Cli) -> None:
    # A real process, so the environment really is what the CLI reads.
    ran = empty_cli.subprocess("data", "list", TRADERUNNER_STORE_URL="nosuchdb://x")
    _assert_one_line_error(ran)
