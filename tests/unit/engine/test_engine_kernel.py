"""Kernel hygiene: one compiled signature, loads from numba's cache, light imports."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np

from traderunner.engine.kernel import _all_good, _kernel, simulate
from traderunner.engine.metrics import _curve_pass
from traderunner.engine.options import BacktestOptions, Direction, Fill

FORBIDDEN = ("sqlalchemy", "redis", "celery", "dash", "httpx", "typer", "rich", "matplotlib")


def test_one_signature_whatever_the_inputs(make_walk: Any) -> None:
    c = make_walk(50, seed=1)
    ro = c.close.copy()
    ro.setflags(write=False)
    strided = np.repeat(c.open, 2)[::2]
    targets: list[Any] = [
        np.ones(50, dtype=np.int8),
        [1, 0] * 25,  # a list
        np.ones(50, dtype=np.int64),
        np.ones(50, dtype=bool),
    ]
    for target in targets:
        for options in (
            BacktestOptions(),
            BacktestOptions(
                fill=Fill.CLOSE, direction=Direction.BOTH, stop_loss=0.01, take_profit=0.5
            ),
        ):
            simulate(strided, c.high, c.low.astype(np.float32), ro, target, options, cash=7)
    assert len(_kernel.signatures) == 1
    first_bad_bar_inputs = (c.ts, strided, c.high, c.low, ro)
    from traderunner.engine.kernel import first_bad_bar

    assert first_bad_bar(*first_bad_bar_inputs) == (-1, "")
    assert len(_all_good.signatures) == 1
    assert len(_curve_pass.signatures) <= 1
    assert _kernel.targetoptions["nogil"] is True


_CHILD = """
import json, sys
import numpy as np
from traderunner.engine import run_backtest
from traderunner.engine.kernel import _kernel, _all_good
from traderunner.engine.metrics import _curve_pass
from traderunner.domain.candles import CandleArrays
n = 200
px = 100 + np.sin(np.arange(n) / 7.0) * 5
c = CandleArrays(ts=np.arange(n, dtype=np.int64) * 86_400 * 10**9, open=px, high=px + 1,
                 low=px - 1, close=px, volume=np.ones(n))
run_backtest("sma_cross", c, {"fast": 3, "slow": 10}, stop_loss=0.05)
misses = sum(sum(d.stats.cache_misses.values()) for d in (_kernel, _all_good, _curve_pass))
print(json.dumps({"misses": misses, "modules": sorted(sys.modules)}))
"""


def _child(code: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_fresh_process_loads_the_kernel_from_the_cache() -> None:
    _child(_CHILD)  # compiles and writes the cache if it was cold
    assert _child(_CHILD)["misses"] == 0


def _modules(code: str) -> set[str]:
    return set(
        _child(code + "\nimport json, sys; print(json.dumps({'m': sorted(sys.modules)}))")["m"]
    )


def _scipy(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] == "scipy"}


def test_import_is_light() -> None:
    imported = _modules("import traderunner.engine")
    assert sorted(m for m in imported if m.split(".")[0] in FORBIDDEN) == []
    # numba imports the bare scipy package for a version check when scipy is installed;
    # importing the engine must add no scipy module of its own.
    assert _scipy(imported) <= _scipy(_modules("import numba, pandas"))


def test_first_backtest_loads_nothing_numba_itself_does_not() -> None:
    ran = set(_child(_CHILD)["modules"])
    assert sorted(m for m in ran if m.split(".")[0] in FORBIDDEN) == []
    # numba's first dispatch loads its BLAS check (scipy.linalg when installed); anything
    # beyond what a trivial jitted function triggers would be ours.
    trivial = _modules("import numba, pandas\nnumba.njit(lambda x: x + 1)(1)")
    assert _scipy(ran) <= _scipy(trivial)
