"""The trader's light modules, imported in a fresh interpreter, load no numba, llvmlite or
engine step: the dashboard and ``trader halt`` read the kill switch through them (the
import-linter contract holds the code; this holds the package's lazy ``__init__``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("numba", "llvmlite", "traderunner.engine.step", "traderunner.trader.broker")


@pytest.mark.parametrize(
    "statement",
    [
        "from traderunner.trader.killswitch import KillSwitch",
        "from traderunner.trader import KillSwitch, RiskLimits, Notifier",
        "import traderunner.dashboard.app",
    ],
)
def test_light_trader_imports_load_no_compiler(statement: str) -> None:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = set(json.loads(proc.stdout))
    assert [m for m in HEAVY if m in loaded] == []


def test_the_broker_still_loads_on_first_use() -> None:
    # The lazy names are real: asking for the paper broker imports it (and the engine's step).
    code = (
        "import json, sys\nimport traderunner.trader as t\nt.PaperBroker\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = set(json.loads(proc.stdout))
    assert "traderunner.trader.broker" in loaded and "traderunner.engine.step" in loaded
