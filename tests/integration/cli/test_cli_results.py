"""``traderunner results``: every local run saved with an owner, listed, shown again, exported,
deleted and pruned; run as real ``python -m traderunner`` processes on a real store."""

from __future__ import annotations

import base64
import getpass
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from traderunner.config import load_settings
from traderunner.domain.runs import RunKind, RunOrigin, RunRecord
from traderunner.store import Store

if TYPE_CHECKING:
    from conftest import Cli, Ran

ME = getpass.getuser()


def _ok(ran: Ran) -> Ran:
    assert ran.code == 0, ran.err
    return ran


def _store(cli: Cli) -> Store:
    return Store.connect(load_settings(data_dir=cli.data_dir).resolved_store_url)


def _plain(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def test_local_runs_are_saved_with_an_owner_and_listed_by_filter(demo_cli: Cli) -> None:
    A, B = demo_cli.symbols
    mine = _ok(demo_cli.subprocess("backtest", "sma_cross", "-s", A, "--json"))
    named = _ok(
        demo_cli.subprocess(
            "backtest", "ema_cross", "-s", f"{A},{B}", "--owner", "lister", "--name", "nightly",
            "--json",
        )
    )  # fmt: skip
    sweep = _ok(
        demo_cli.subprocess(
            "sweep", "sma_cross", "-s", B, "-g", "fast=5,10", "-g", "slow=20,40", "--owner",
            "lister", "--json",
        )
    )  # fmt: skip
    own, nightly, swept = (r.json()["result_id"] for r in (mine, named, sweep))

    def listed(*args: str) -> dict[str, Any]:  # in this process: the filters, not start-up
        return _ok(demo_cli("results", "list", *args, "--json")).json()

    everything = _ok(demo_cli.subprocess("results", "list", "--json")).json()
    assert everything["total"] == 3
    assert [r["id"] for r in everything["results"]] == [swept, nightly, own]  # newest first
    kinds = [(r["kind"], r["origin"], r["owner"]) for r in everything["results"]]
    # Without --owner a run is recorded for the OS user.
    assert kinds == [("sweep", "local", "lister"), ("backtest", "local", "lister"),
                     ("backtest", "local", ME)]  # fmt: skip
    assert [r["id"] for r in listed("--owner", "lister", "--symbol", A.lower())["results"]] == [
        nightly
    ]
    today = datetime.now(UTC).date()
    assert listed("--since", str(today + timedelta(days=1)))["total"] == 0
    assert listed("--until", str(today), "--origin", "local")["total"] == 3
    page = listed("--kind", "backtest", "--limit", "1", "--offset", "1")
    assert page["total"] == 2 and [r["id"] for r in page["results"]] == [own]
    table = _ok(demo_cli.subprocess("results", "list", "--strategy", "ema_cross"))
    row = next(line for line in table.out.splitlines() if nightly[:12] in line)
    assert 'ema_cross "nightly"' in row and f"{A}, {B}" in row and "lister" in row
    assert "results 1-1 of 1" in table.out


def test_show_prints_the_same_tables_as_the_run(demo_cli: Cli) -> None:
    A, B = demo_cli.symbols
    args = ("backtest", "sma_cross", "-s", f"{A},{B}", "--fees-bps", "3", "--take-profit", "0.05")
    ran = _ok(demo_cli.subprocess(*args, "--trades", "4", "--owner", "shower"))
    rid = next(
        line.removeprefix("saved result ").strip()
        for line in ran.out.splitlines()
        if line.startswith("saved result ")
    )
    shown = _ok(demo_cli.subprocess("results", "show", rid[:7], "--trades", "4"))
    printed = [line for line in _plain(ran.out) if not line.startswith(("saved result", "see it"))]
    first, *rest = _plain(shown.out)
    assert first.startswith(f"result {rid} · backtest run here · owner shower")
    assert rest == printed
    assert "fees 3 bps" in printed[1] and "take-profit 5%" in printed[1]
    # --json: what the run printed with --json.
    as_json = _ok(demo_cli(*args, "--no-save", "--json")).json()  # the reference, in-process
    stored = _ok(demo_cli.subprocess("results", "show", rid, "--json")).json()
    assert {k: stored[k] for k in as_json} == as_json
    assert (stored["result_id"], stored["owner"], stored["timeframe"]) == (rid, "shower", "M5")
    # A sweep shows its top rows again, ranked as asked.
    sweep = ("sweep", "sma_cross", "-s", A, "-g", "fast=4:12:4", "-g", "slow=20,30", "--top", "3")
    swept = _ok(
        demo_cli.subprocess(*sweep, "--sort", "total_return", "--json", "--owner", "shower")
    )
    again = _ok(
        demo_cli.subprocess(
            "results", "show", swept.json()["result_id"], "--top", "3", "--sort", "total_return",
            "--json",
        )
    )  # fmt: skip
    assert again.json()["rows"] == swept.json()["rows"]
    assert again.json()["grid"] == {"fast": [4, 8, 12], "slow": [20, 30]}


def _figure_traces(page: str) -> list[dict[str, Any]]:
    """The traces of the report's Plotly figure, decoded from the page's inline script."""
    start = page.index("Plotly.newPlot(")
    after_id = page.index(",", start) + 1
    traces, _ = json.JSONDecoder().raw_decode(page[after_id:].lstrip())
    assert isinstance(traces, list)
    return traces


def _values(array: Any) -> np.ndarray:
    if isinstance(array, dict):  # plotly's typed-array encoding: base64 bytes, dtype, shape
        flat = np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]))
        shape = [int(n) for n in str(array.get("shape", len(flat))).split(",")]
        return flat.reshape(shape)
    return np.asarray(array, dtype=float)


def test_export_writes_csv_files_and_a_self_contained_report(demo_cli: Cli, tmp_path: Path) -> None:
    A = demo_cli.symbols[0]
    payload = _ok(
        demo_cli.subprocess("backtest", "sma_cross", "-s", A, "--owner", "exporter", "--json")
    ).json()
    rid = payload["result_id"]
    out = tmp_path / "export"
    out.mkdir()
    ran = _ok(demo_cli.subprocess("results", "export", rid[:6], "--to", str(out), "--json"))
    stem = rid[:12]
    files = {Path(p).name for p in ran.json()["files"]}
    assert files == {f"{stem}-trades.csv", f"{stem}-equity.csv", f"{stem}-report.html"}

    trades = pd.read_csv(out / f"{stem}-trades.csv")
    assert len(trades) == payload["trades"] > 0
    assert list(trades["pnl"]) == pytest.approx([t["pnl"] for t in payload["trade_list"]])
    assert list(trades["entry_time"]) == [t["entry_time"] for t in payload["trade_list"]]
    equity = pd.read_csv(out / f"{stem}-equity.csv", parse_dates=["time"])
    metrics = payload["metrics"]
    assert equity["equity"].iloc[-1] == pytest.approx(metrics["end_value"])
    assert equity["drawdown"].min() == pytest.approx(metrics["max_drawdown"])
    assert equity["time"].is_monotonic_increasing and equity["time"].dt.tz is not None

    page = (out / f"{stem}-report.html").read_text()
    assert not re.search(r"<script[^>]+src=", page)  # plotly.js is inlined: opens offline
    assert "<link" not in page
    traces = {t.get("name"): t for t in _figure_traces(page)}
    assert np.allclose(_values(traces["equity"]["y"]), equity["equity"].to_numpy())
    assert np.allclose(_values(traces["drawdown %"]["y"]), equity["drawdown"].to_numpy() * 100)
    entries = traces[f"{A} entries"]
    assert np.allclose(_values(entries["y"]), trades["entry_price"].to_numpy())
    assert f"{A} close" in traces and "SYNTHETIC data" in page
    assert "sma_cross fast=10 slow=50" in page and "long only" in page

    sweep = _ok(
        demo_cli(
            "sweep", "sma_cross", "-s", A, "-g", "fast=5,10", "-g", "slow=20,40", "--owner",
            "exporter", "--json",
        )
    ).json()  # fmt: skip
    sid = sweep["result_id"]
    _ok(demo_cli.subprocess("results", "export", sid, "--to", str(out), "-f", "csv,html"))
    rows = pd.read_csv(out / f"{sid[:12]}-rows.csv")
    assert len(rows) == 4 and set(zip(rows["fast"], rows["slow"], strict=True)) == {
        (5, 20), (5, 40), (10, 20), (10, 40)
    }  # fmt: skip
    heatmap = next(t for t in _figure_traces((out / f"{sid[:12]}-report.html").read_text()))
    assert heatmap["type"] == "heatmap"
    z = _values(heatmap["z"])
    assert z.shape == (2, 2)  # slow x fast
    assert np.nanmax(z) == pytest.approx(rows["sharpe"].max())
    bad = demo_cli("results", "export", sid, "--to", str(tmp_path / "missing"))
    assert bad.code == 2 and len(bad.err_lines) == 1 and "does not exist" in bad.err


def _old(store: Store, rid: str, owner: str, days: float) -> None:
    """A saved run as if it had been saved ``days`` ago."""
    store.runs.save(
        RunRecord(
            id=rid,
            kind=RunKind.SWEEP,
            origin=RunOrigin.LOCAL,
            owner=owner,
            created_at=datetime.now(UTC) - timedelta(days=days),
            strategy="sma_cross",
            symbols=("AAA",),
            timeframe="M5",
            summary={"combinations": 1},
        ),
        {"rows": [{"fast": 3, "sharpe": 0.5}]},
    )


def test_prefixes_delete_and_prune_keep_to_their_owners(demo_cli: Cli) -> None:
    with _store(demo_cli) as store:
        _old(store, "abcd0001", ME, 40)
        _old(store, "abcd0002", ME, 1)
        _old(store, "abce0003", "someone-else", 40)
    ambiguous = demo_cli.subprocess("results", "show", "abcd")
    assert ambiguous.code == 2 and ambiguous.err_lines == [
        "error: result id 'abcd' is ambiguous: abcd0001, abcd0002 start with it; give more "
        "characters"
    ]
    short = demo_cli("results", "delete", "abc")
    assert short.code == 2 and "too short" in short.err
    # Another user's run is refused, and then nothing of the command is done.
    refused = demo_cli.subprocess("results", "delete", "abcd0002", "abce")
    assert refused.code == 2 and "belongs to 'someone-else'" in refused.err
    listed = _ok(demo_cli("results", "list", "--kind", "sweep", "--json")).json()
    assert {"abcd0001", "abcd0002", "abce0003"} <= {r["id"] for r in listed["results"]}

    dry = _ok(demo_cli.subprocess("results", "prune", "--older-than", "30d", "--dry-run", "--json"))
    assert dry.json()["results"] == ["abcd0001"] and dry.json()["dry_run"] is True
    pruned = _ok(demo_cli.subprocess("results", "prune", "--older-than", "30d"))
    assert pruned.out.startswith(f"deleted 1 of {ME}'s results saved before")
    assert demo_cli("results", "prune", "--older-than", "30d", "--owner", "someone-else").code == 2
    admin = _ok(demo_cli.subprocess("results", "prune", "--older-than", "4w", "--admin", "--json"))
    assert admin.json()["results"] == ["abce0003"]
    gone = _ok(demo_cli.subprocess("results", "delete", "abcd", "--json"))  # unique again
    assert gone.json() == {"deleted": ["abcd0002"], "count": 1}
    with _store(demo_cli) as store:
        assert {r.id for r in store.runs.list(kind=RunKind.SWEEP, limit=None).items}.isdisjoint(
            {"abcd0001", "abcd0002", "abce0003"}
        )
    bad = demo_cli("results", "prune", "--older-than", "soon")
    assert bad.code == 2 and bad.err_lines == [
        "error: --older-than 'soon' is not a duration: write a number and a unit, e.g. 30d, "
        "12h, 90m, 2w"
    ]
