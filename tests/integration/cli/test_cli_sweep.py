"""``traderunner sweep``: grids in, ranked rows and an all-rows CSV out."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from traderunner.engine import METRIC_NAMES

if TYPE_CHECKING:
    from conftest import Cli


def _desc_nan_last(values: list[float | None]) -> bool:
    real = [v for v in values if v is not None and not math.isnan(v)]
    tail = values[len(real) :]
    return real == sorted(real, reverse=True) and all(v is None for v in tail)


def test_sweep_json_and_csv(demo_cli: Cli, tmp_path: Path) -> None:
    A = demo_cli.symbols[0]
    out = tmp_path / "rows.csv"
    started = time.perf_counter()
    ran = demo_cli(
        "sweep",
        "sma_cross",
        "--grid",
        "fast=5:15:5",
        "--grid",
        "slow=20,40",
        "--symbols",
        A,
        "--top",
        "4",
        "--json",
        "--csv",
        str(out),
        "--workers",
        "2",
    )
    assert ran.code == 0, ran.err
    payload = ran.json()
    assert payload["strategy"] == "sma_cross"
    assert payload["combinations"] == 6  # 3 fast x 2 slow, all with fast < slow
    assert payload["skipped"] == 0
    # The sweep's own timing: positive, in seconds, and within the command's wall time.
    assert 0 < payload["elapsed_s"] < time.perf_counter() - started
    rows = payload["rows"]
    assert len(rows) == 4
    assert payload["best"] == rows[0]
    assert _desc_nan_last([r["sharpe"] for r in rows])
    for row in rows:
        assert row["fast"] in (5, 10, 15)
        assert row["slow"] in (20, 40)
        assert set(METRIC_NAMES) <= set(row)

    frame = pd.read_csv(out)
    assert len(frame) == payload["combinations"]
    assert sorted(zip(frame["fast"], frame["slow"], strict=True)) == sorted(
        (f, s) for f in (5, 10, 15) for s in (20, 40)
    )
    assert {"sharpe", "total_return", "trades"} <= set(frame.columns)
    # No temp file is left beside the CSV.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]


def test_invalid_combinations_are_skipped_and_sort_is_honoured(demo_cli: Cli) -> None:
    A, B = demo_cli.symbols
    ran = demo_cli(
        "sweep",
        "sma_cross",
        "-g",
        "fast=10:30:10",
        "-g",
        "slow=20:30:10",
        "--symbols",
        f"{A},{B}",
        "--sort",
        "total_return",
        "--json",
    )
    assert ran.code == 0, ran.err
    payload = ran.json()
    # (10,20) (10,30) (20,30) are valid; (20,20) (30,20) (30,30) break fast < slow.
    assert payload["combinations"] == 3
    assert payload["skipped"] == 3
    assert _desc_nan_last([r["total_return"] for r in payload["rows"]])
    assert payload["best"]["total_return"] == max(r["total_return"] for r in payload["rows"])


def test_fixed_param_and_table_output(demo_cli: Cli, tmp_path: Path) -> None:
    A = demo_cli.symbols[0]
    ran = demo_cli(
        "sweep",
        "macd",
        "--grid",
        "fast=6:12:6",
        "--param",
        "slow=30",
        "--symbols",
        A,
        "--csv",
        str(tmp_path / "macd.csv"),
    )
    assert ran.code == 0, ran.err
    assert "SYNTHETIC data" in ran.out
    assert "top 2 of 2 by sharpe" in ran.out
    assert "2 combinations (0 skipped" in ran.out
    frame = pd.read_csv(tmp_path / "macd.csv")
    assert frame["slow"].tolist() == [30, 30]
    assert sorted(frame["fast"].tolist()) == [6, 12]
