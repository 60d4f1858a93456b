"""Data a user can trust: ``data import`` tells the timeframe from the file and refuses one the
file contradicts, identical re-imports change nothing, ``data delete`` asks first, ``--data``
says the timeframe it used, and a store URL that cannot be a store is one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from tests.clihelpers import Ran as Result
from tests.clihelpers import run_here

if TYPE_CHECKING:
    from conftest import Cli, Ran


def daily_csv(path: Path, n: int = 260, seed: int = 3) -> Path:
    """``n`` weekday bars (weekends skipped), stamped at midnight UTC."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    pd.DataFrame(
        {
            "date": pd.bdate_range("2023-01-02", periods=n).strftime("%Y-%m-%d"),
            "open": open_,
            "high": np.maximum(open_, close) * 1.003,
            "low": np.minimum(open_, close) * 0.997,
            "close": close,
            "volume": rng.integers(1_000, 5_000, n),
        }
    ).to_csv(path, index=False)
    return path


def answered(cli: Cli, args: tuple[str, ...], answer: str) -> Result:
    """``python -m traderunner ARGS`` with ``answer`` on its stdin."""
    proc = subprocess.run(
        [sys.executable, "-m", "traderunner", *args],
        input=answer,
        capture_output=True,
        text=True,
        env=cli.env(),
        timeout=120,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def one_line_error(ran: Ran) -> str:
    assert ran.code == 2, (ran.code, ran.out, ran.err)
    assert "Traceback" not in ran.err and ran.out == ""
    assert len(ran.err_lines) == 1, ran.err
    assert ran.err_lines[0].startswith("error: ")
    return ran.err_lines[0]


def test_import_tells_the_timeframe_and_a_second_import_changes_nothing(
    empty_cli: Cli, tmp_path: Path
) -> None:
    path = daily_csv(tmp_path / "acme.csv")
    first = empty_cli("data", "import", str(path))
    assert first.code == 0, first.err
    assert "timeframe D1 (told from the bar times); 260 new bars" in first.out
    again = empty_cli("data", "import", str(path), "--timeframe", "D1")
    assert again.code == 0, again.err
    assert "timeframe D1 (told from the bar times); nothing changed" in again.out
    listed = empty_cli("data", "list", "--json").json()["series"]
    assert [(s["symbol"], s["timeframe"], s["bars"], s["version"]) for s in listed] == [
        ("ACME", "D1", 260, 1)
    ]


def test_import_refuses_a_timeframe_the_file_contradicts(empty_cli: Cli, tmp_path: Path) -> None:
    path = daily_csv(tmp_path / "acme.csv")
    line = one_line_error(empty_cli("data", "import", str(path), "--timeframe", "M5"))
    assert "the bars are D1 (most common gap 1 day" in line
    assert "not M5 as --timeframe says: drop --timeframe, or pass --timeframe D1" in line
    assert empty_cli("data", "list", "--json").json() == {"series": []}
    odd = tmp_path / "odd.csv"
    odd.write_text(
        "time,open,high,low,close\n"
        + "".join(
            f"2024-01-02T{t}:00Z,10,11,9,10\n"
            for t in ("14:30", "14:35", "14:47", "15:03", "15:31", "16:00")
        )
    )
    line = one_line_error(empty_cli("data", "import", str(odd)))
    assert "cannot tell the timeframe from the bar times" in line and "--timeframe" in line
    given = empty_cli("data", "import", str(odd), "--timeframe", "M5")
    assert given.code == 0, given.err
    assert "timeframe M5 (as given)" in given.out


def test_backtest_on_a_file_says_the_timeframe_it_told(empty_cli: Cli, tmp_path: Path) -> None:
    path = daily_csv(tmp_path / "acme.csv")
    ran = empty_cli("backtest", "sma_cross", "--data", str(path), "--no-save", "--json")
    assert ran.code == 0, ran.err
    payload = ran.json()
    assert (payload["timeframe"], payload["timeframe_from"]) == ("D1", "told from acme.csv")
    table = empty_cli("backtest", "sma_cross", "--data", str(path), "--no-save")
    assert table.code == 0, table.err
    assert "D1 (told from acme.csv)" in table.out.splitlines()[0]
    line = one_line_error(
        empty_cli("sweep", "sma_cross", "--data", str(path), "-t", "H1", "-g", "fast=5:10:5")
    )
    assert "the bars are D1" in line and "not H1" in line


def test_delete_asks_first_and_removes_the_series(empty_cli: Cli, tmp_path: Path) -> None:
    path = daily_csv(tmp_path / "acme.csv")
    assert empty_cli("data", "import", str(path)).code == 0
    ask = ("data", "delete", "--symbol", "acme", "--timeframe", "D1")
    # "n", and no answer at all (no input to read), are no: nothing deleted, exit 1.
    env = {"TRADERUNNER_DATA_DIR": str(empty_cli.data_dir)}
    for refused in (answered(empty_cli, ask, "n\n"), run_here(ask, env)):
        assert refused.code == 1, refused.err
        assert "delete 260 D1 bars of ACME (2023-01-02" in refused.err
        assert "nothing deleted: answer y, or pass --yes" in refused.err
        assert len(empty_cli("data", "list", "--json").json()["series"]) == 1
    yes = answered(empty_cli, ask, "y\n")
    assert yes.code == 0, yes.err
    assert "deleted 260 D1 bars of ACME and its series; cache: not running" in yes.out
    assert empty_cli("data", "import", str(path)).code == 0
    gone = empty_cli("data", "delete", "--symbol", "acme", "-t", "D1", "--yes", "--json")
    assert gone.code == 0, gone.err
    payload = gone.json()
    assert payload["deleted"]["symbol"] == "ACME" and payload["deleted"]["bars"] == 260
    assert payload["cache"].startswith("not running")  # no cache server was ever started
    assert empty_cli("data", "list", "--json").json() == {"series": []}
    line = one_line_error(empty_cli("data", "delete", "--symbol", "acme", "-t", "D1", "--yes"))
    assert "no D1 candles for 'ACME'" in line and "available: none" in line


def test_a_store_url_that_cannot_be_a_store_is_one_line(empty_cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "folder" / "t.db"
    env = {"TRADERUNNER_DATA_DIR": str(empty_cli.data_dir)}
    ran = run_here(["data", "list"], env | {"TRADERUNNER_STORE_URL": f"sqlite:///{missing}"})
    line = one_line_error(ran)
    assert f"the folder {missing.parent} of the store" in line and "does not exist" in line
    assert not missing.parent.exists()
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list\n" * 200)
    ran = run_here(["data", "list"], env | {"TRADERUNNER_STORE_URL": f"sqlite:///{notes}"})
    line = one_line_error(ran)
    assert f"the store file {notes} is not a SQLite database" in line
    assert "server" not in line
