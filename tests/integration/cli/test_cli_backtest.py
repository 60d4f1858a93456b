"""``traderunner backtest`` end to end: store or file in, metrics and a saved result out."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from traderunner.config import load_settings
from traderunner.engine import METRIC_NAMES
from traderunner.store import Store

if TYPE_CHECKING:
    from conftest import Cli


def _stored_result(cli: Cli, result_id: str) -> dict | None:
    """The saved run as a dict: its record's fields, and its document as ``summary``."""
    url = load_settings(data_dir=cli.data_dir).resolved_store_url
    store = Store.connect(url)
    try:
        record = store.runs.get(result_id)
        if record is None:
            return None
        return {**record.to_dict(), "summary": store.runs.document(result_id)}
    finally:
        store.close()


def test_demo_then_backtest_json_is_one_complete_object(demo_cli: Cli) -> None:
    A = demo_cli.symbols[0]
    ran = demo_cli("backtest", "sma_cross", "--symbols", A, "--json")
    assert ran.code == 0, ran.err
    payload = ran.json()  # the whole of stdout is one JSON object
    assert isinstance(payload, dict)
    assert payload["strategy"] == "sma_cross"
    assert payload["symbols"] == [A]
    assert payload["sources"] == {A: "synthetic"}
    assert isinstance(payload["trades"], int)
    assert payload["trades"] == len(payload["trade_list"])
    assert payload["trades"] > 0
    assert set(METRIC_NAMES) <= set(payload["metrics"])
    assert payload["metrics"]["trades"] == payload["trades"]
    assert payload["params"] == {"fast": 10, "slow": 50, "mode": "cross"}
    # Synthetic data is flagged even in JSON mode, on stderr so stdout stays pure JSON.
    assert "SYNTHETIC data" in ran.err

    saved = _stored_result(demo_cli, payload["result_id"])
    assert saved is not None
    assert saved["strategy"] == "sma_cross"
    assert saved["timeframe"] == "M5"
    assert saved["metrics"]["total_return"] == payload["metrics"]["total_return"]
    assert saved["summary"]["trades"] == payload["trades"]
    assert saved["summary"]["trade_list"] == payload["trade_list"]
    assert "equity" in saved["tables"] and f"price:{A}" in saved["tables"]  # curves saved
    assert saved["owner"] == getpass.getuser() and saved["origin"] == "local"


def test_table_output_labels_synthetic_data_and_prints_the_saved_id(demo_cli: Cli) -> None:
    A = demo_cli.symbols[0]
    ran = demo_cli("backtest", "ema_cross", "--symbols", A, "--trades", "3")
    assert ran.code == 0, ran.err
    assert "SYNTHETIC data" in ran.out
    for name in ("total_return", "sharpe", "max_drawdown", "win_rate"):
        assert name in ran.out
    assert "last 3 of" in ran.out
    saved_line = [line for line in ran.out.splitlines() if line.startswith("saved result ")]
    assert len(saved_line) == 1
    result_id = saved_line[0].removeprefix("saved result ").strip()
    assert f"traderunner results show {result_id[:8]}" in ran.out  # how to get it back
    assert _stored_result(demo_cli, result_id) is not None


def test_no_save_stores_nothing_and_omits_the_id(demo_cli: Cli) -> None:
    A = demo_cli.symbols[0]
    ran = demo_cli("backtest", "sma_cross", "--symbols", A, "--no-save", "--json")
    assert ran.code == 0, ran.err
    assert "result_id" not in ran.json()


def test_multi_symbol_reports_portfolio_and_each_symbol(demo_cli: Cli) -> None:
    A, B = demo_cli.symbols
    ran = demo_cli("backtest", "sma_cross", "--symbols", f"{A},{B}", "--no-save", "--json")
    assert ran.code == 0, ran.err
    payload = ran.json()
    assert payload["symbols"] == [A, B]
    assert set(payload["per_symbol"]) == {A, B}
    per_symbol_trades = sum(v["trades"] for v in payload["per_symbol"].values())
    assert per_symbol_trades == payload["trades"] == len(payload["trade_list"])
    assert {t["symbol"] for t in payload["trade_list"]} <= {A, B}

    table = demo_cli("backtest", "sma_cross", "-s", A, "-s", B, "--no-save")
    assert table.code == 0, table.err
    header = next(line for line in table.out.splitlines() if "portfolio" in line)
    assert A in header
    assert B in header


def test_all_symbols_of_the_timeframe_when_none_given(demo_cli: Cli) -> None:
    ran = demo_cli("backtest", "sma_cross", "--no-save", "--json")
    assert ran.code == 0, ran.err
    assert sorted(ran.json()["symbols"]) == sorted(demo_cli.symbols)


def test_params_period_and_engine_options_reach_the_engine(demo_cli: Cli) -> None:
    A = demo_cli.symbols[0]
    base = ["backtest", "sma_cross", "--symbols", A, "--no-save", "--json"]
    ran = demo_cli(
        *base,
        "--param",
        "fast=5",
        "-p",
        "slow=20",
        "--fill",
        "close",
        "--direction",
        "both",
        "--fees-bps",
        "25",
        "--fee-per-order",
        "1",
        "--size",
        "0.5",
        "--cash",
        "50000",
    )
    assert ran.code == 0, ran.err
    payload = ran.json()
    assert payload["params"] == {"fast": 5, "slow": 20, "mode": "cross"}
    opts = payload["options"]
    assert (opts["fill"], opts["direction"], opts["size"], opts["cash"]) == (
        "close",
        "both",
        0.5,
        50000.0,
    )
    assert opts["fees_bps"] == 25.0
    assert opts["fee_per_order"] == 1.0
    trades = payload["trade_list"]
    assert trades
    assert any(t["size"] < 0 for t in trades)  # direction=both trades the short side
    assert all(t["fees"] > 1.0 for t in trades)  # two fills, each >= the fixed fee
    assert payload["metrics"]["start_value"] == pytest.approx(50000.0)

    # A narrower period gives only trades inside it.
    first_day = pd.Timestamp(trades[0]["entry_time"]).normalize()
    start = (first_day + pd.Timedelta(days=3)).date().isoformat()
    narrow = demo_cli(*base, "--from", start)
    assert narrow.code == 0, narrow.err
    entries = [pd.Timestamp(t["entry_time"]) for t in narrow.json()["trade_list"]]
    assert entries
    assert min(entries) >= pd.Timestamp(start, tz="UTC")


def test_stops_are_passed_and_show_up_as_exit_reasons(demo_cli: Cli) -> None:
    A = demo_cli.symbols[0]
    ran = demo_cli(
        "backtest",
        "sma_cross",
        "--symbols",
        A,
        "--no-save",
        "--json",
        "--stop-loss",
        "0.001",
        "--take-profit",
        "0.002",
    )
    assert ran.code == 0, ran.err
    payload = ran.json()
    assert payload["options"]["stop_loss"] == 0.001
    reasons = {t["exit_reason"] for t in payload["trade_list"]}
    assert reasons & {"stop_loss", "take_profit"}


def _write_csv(path: Path, n: int = 400, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    frame = pd.DataFrame(
        {
            "time": pd.date_range("2023-01-02", periods=n, freq="D", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) * 1.002,
            "low": np.minimum(open_, close) * 0.998,
            "close": close,
            "volume": rng.integers(1_000, 5_000, n),
        }
    )
    frame.to_csv(path, index=False)
    return frame


def test_backtest_on_a_csv_file_without_the_store(empty_cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "acme.csv"
    _write_csv(path)
    ran = empty_cli(
        "backtest", "sma_cross", "--data", str(path), "--timeframe", "D1", "--no-save", "--json"
    )
    assert ran.code == 0, ran.err
    payload = ran.json()
    assert payload["symbols"] == ["ACME"]
    assert "synthetic" not in str(payload["sources"]).lower()
    assert "SYNTHETIC" not in ran.err
    assert payload["trades"] == len(payload["trade_list"])
    assert payload["metrics"]["trades"] == payload["trades"]

    named = empty_cli(
        "backtest",
        "sma_cross",
        "--data",
        str(path),
        "--symbol",
        "xyz",
        "-t",
        "D1",
        "--to",
        "2023-06-30",
        "--json",
    )
    assert named.code == 0, named.err
    body = named.json()
    assert body["symbols"] == ["XYZ"]
    assert all(t["exit_time"] <= "2023-07-01" for t in body["trade_list"])
    # Saved even though the candles came from a file.
    assert _stored_result(empty_cli, body["result_id"]) is not None


def test_imported_file_can_be_backtested_from_the_store(empty_cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "acme.csv"
    _write_csv(path, n=300)
    imported = empty_cli("data", "import", str(path), "--timeframe", "D1")
    assert imported.code == 0, imported.err
    assert "ACME" in imported.out
    listed = empty_cli("data", "list", "--json").json()["series"]
    assert [(s["symbol"], s["timeframe"], s["bars"]) for s in listed] == [("ACME", "D1", 300)]
    ran = empty_cli("backtest", "macd", "--symbols", "acme", "-t", "D1", "--no-save", "--json")
    assert ran.code == 0, ran.err
    assert ran.json()["symbols"] == ["ACME"]
