"""``traderunner strategies``, ``data demo``, ``data list`` and ``version``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.builtins import BUILT_IN_STRATEGIES

import traderunner

if TYPE_CHECKING:
    from conftest import Cli


def test_strategies_json_lists_every_built_in_with_bounds(empty_cli: Cli) -> None:
    ran = empty_cli("strategies", "--json")
    assert ran.code == 0, ran.err
    listed = {s["name"]: s for s in ran.json()["strategies"]}
    assert set(listed) >= set(BUILT_IN_STRATEGIES)
    for name in BUILT_IN_STRATEGIES:
        entry = listed[name]
        assert entry["description"]
        assert entry["params"], name
        for spec in entry["params"]:
            assert spec["type"] in ("int", "float", "bool", "str")
            assert spec["bounds"]
            if spec["type"] in ("int", "float") and spec["low"] is not None:
                assert spec["low"] <= spec["default"]
                assert spec["bounds"].startswith("[")
    sma = {p["name"]: p for p in listed["sma_cross"]["params"]}
    assert sma["fast"]["type"] == "int"
    assert sma["slow"]["default"] > sma["fast"]["default"]
    assert listed["opening_range_breakout"]["intraday"] is True
    # The crossover rules' reading, with its default and allowed values.
    for name in ("sma_cross", "ema_cross", "macd"):
        mode = {p["name"]: p for p in listed[name]["params"]}["mode"]
        assert mode["type"] == "str" and mode["default"] == "cross"
        assert mode["choices"] == ["cross", "regime"] and mode["bounds"] == "cross|regime"
        assert listed[name]["interface_version"] == 2
        assert listed[name]["history_bars"] >= 2


def test_strategies_table(empty_cli: Cli) -> None:
    ran = empty_cli("strategies")
    assert ran.code == 0, ran.err
    for name in BUILT_IN_STRATEGIES:
        assert name in ran.out
    assert "fast: int" in ran.out
    assert "mode: str = 'cross'  cross|regime" in ran.out


def test_data_list_shows_the_synthetic_demo_series(demo_cli: Cli) -> None:
    ran = demo_cli("data", "list", "--json")
    assert ran.code == 0, ran.err
    series = ran.json()["series"]
    assert sorted(s["symbol"] for s in series) == sorted(demo_cli.symbols)
    for s in series:
        assert s["source"] == "synthetic"
        assert s["timeframe"] == "M5"
        assert s["bars"] > 0
        assert s["first"] < s["last"]
        assert s["version"] >= 1
    table = demo_cli("data", "list")
    assert table.code == 0, table.err
    assert "synthetic" in table.out
    assert all(symbol in table.out for symbol in demo_cli.symbols)


def test_data_demo_says_it_is_synthetic_and_respects_days(empty_cli: Cli) -> None:
    ran = empty_cli("data", "demo", "--symbols", "zzz", "--days", "3", "--timeframe", "H1")
    assert ran.code == 0, ran.err
    assert "SYNTHETIC data" in ran.out
    series = empty_cli("data", "list", "--json").json()["series"]
    assert [(s["symbol"], s["timeframe"]) for s in series] == [("ZZZ", "H1")]
    # At most 3 calendar days of hourly session bars (7 a day).
    assert 0 < series[0]["bars"] <= 3 * 7
    longer = type(empty_cli)(empty_cli.data_dir.parent / "other")
    assert longer("data", "demo", "-s", "ZZZ", "--days", "20", "-t", "H1").code == 0
    assert longer("data", "list", "--json").json()["series"][0]["bars"] > series[0]["bars"]


def test_data_list_on_an_empty_store_says_what_to_do(empty_cli: Cli) -> None:
    ran = empty_cli("data", "list")
    assert ran.code == 0, ran.err
    assert "traderunner data demo" in ran.out
    assert empty_cli("data", "list", "--json").json() == {"series": []}


def test_data_dir_option_overrides_the_environment(empty_cli: Cli) -> None:
    elsewhere = empty_cli.data_dir.parent / "elsewhere"
    ran = empty_cli("--data-dir", str(elsewhere), "data", "demo", "-s", "QQQ", "--days", "2")
    assert ran.code == 0, ran.err
    assert (elsewhere / "traderunner.db").exists()
    # The environment's data dir is untouched.
    assert empty_cli("data", "list", "--json").json() == {"series": []}


def test_version(empty_cli: Cli) -> None:
    ran = empty_cli("version")
    assert ran.code == 0
    assert ran.out.strip() == f"traderunner {traderunner.__version__}"
