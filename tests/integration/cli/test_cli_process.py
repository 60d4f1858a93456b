"""What only a real ``python -m traderunner`` process shows: imports, plugins, tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Cli


HEAVY = ("pandas", "numba", "sqlalchemy", "traderunner.engine", "traderunner.store")

PLUGIN = textwrap.dedent(
    """
    from dataclasses import dataclass

    import numpy as np

    from traderunner.strategies import Strategy, StrategyParams, param


    @dataclass(frozen=True, slots=True)
    class FlipParams(StrategyParams):
        every: int = param(12, low=1, high=1000, doc="bars between flips")


    class Flip(Strategy):
        name = "flip_test"
        description = "long for `every` bars, flat for `every` bars"
        Params = FlipParams

        def indicators(self, candles):
            return {}

        def signals(self, candles, indicators):
            return ((np.arange(len(candles)) // self.params.every) % 2).astype(np.int8)
    """
)


def test_help_is_light_and_lists_every_command(empty_cli: Cli) -> None:
    probe = textwrap.dedent(
        f"""
        import json, sys
        from traderunner.cli import main
        for argv in (["--help"], ["backtest", "--help"], ["sweep", "--help"], ["data", "--help"]):
            try:
                main(argv)
            except SystemExit as exc:
                assert exc.code == 0, (argv, exc.code)
        sys.__stderr__.write(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=empty_cli.env(),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []
    for command in ("backtest", "sweep", "strategies", "data", "version"):
        assert command in proc.stdout
    for flag in ("--fees-bps", "--trailing-stop", "--save", "--grid", "--csv"):
        assert flag in proc.stdout


def test_python_dash_m_runs_and_prints_the_version(empty_cli: Cli) -> None:
    ran = empty_cli.subprocess("version")
    assert ran.code == 0, ran.err
    assert ran.out.startswith("traderunner ")


def test_user_strategy_folder_is_loaded_before_use(demo_cli: Cli, tmp_path: Path) -> None:
    A = demo_cli.symbols[0]
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "flip.py").write_text(PLUGIN)
    env = {"TRADERUNNER_STRATEGY_PATH": str(plugins)}

    listed = demo_cli.subprocess("strategies", "--json", **env)
    assert listed.code == 0, listed.err
    names = [s["name"] for s in listed.json()["strategies"]]
    assert "flip_test" in names
    assert "sma_cross" in names

    ran = demo_cli.subprocess(
        "backtest", "flip_test", "--symbols", A, "-p", "every=6", "--no-save", "--json", **env
    )
    assert ran.code == 0, ran.err
    payload = ran.json()
    assert payload["params"] == {"every": 6}
    assert payload["trades"] > 0
    # Each trade is held for `every` bars by construction.
    assert {t["bars"] for t in payload["trade_list"] if t["exit_reason"] == "signal"} == {6}


def test_broken_user_strategy_file_is_one_line_naming_the_file(
    empty_cli: Cli, tmp_path: Path
) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "oops.py").write_text("def broken(:\n    pass\n")
    ran = empty_cli.subprocess("strategies", TRADERUNNER_STRATEGY_PATH=str(plugins))
    assert ran.code == 2, ran.err
    assert "Traceback" not in ran.err
    assert len(ran.err_lines) == 1, ran.err
    assert ran.err_lines[0].startswith("error: ")
    assert "oops.py" in ran.err_lines[0]


BUGGY = PLUGIN.replace("flip_test", "buggy_test").replace(
    "    def indicators(self, candles):",
    "    def __init__(self, params=None):\n"
    "        raise RuntimeError('boom in the constructor')\n\n"
    "    def indicators(self, candles):",
)
assert "boom" in BUGGY


def test_unexpected_error_is_one_line_with_a_debug_hint(demo_cli: Cli, tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "buggy.py").write_text(BUGGY)
    args = ("backtest", "buggy_test", "--symbols", demo_cli.symbols[0], "--no-save")
    env = {"TRADERUNNER_STRATEGY_PATH": str(plugins)}

    ran = demo_cli.subprocess(*args, **env)
    assert ran.code == 1, ran.err
    assert "Traceback" not in ran.err
    assert len(ran.err_lines) == 1, ran.err
    line = ran.err_lines[0]
    assert line.startswith("error: ")
    assert "boom in the constructor" in line
    assert "TRADERUNNER_DEBUG=1" in line

    debug = demo_cli.subprocess(*args, TRADERUNNER_DEBUG="1", **env)
    assert debug.code == 1
    assert "Traceback" in debug.err
    assert "RuntimeError: boom in the constructor" in debug.err
