"""Run the real ``traderunner`` CLI against a temporary data directory.

``cli(...)`` calls :func:`traderunner.cli.main` in this process (the real app, the real store,
the real engine; fast because imports and numba kernels are shared), capturing stdout, stderr
and the exit code. ``cli.subprocess(...)`` runs ``python -m traderunner`` in a fresh process,
for what only a real process shows (import cost, tracebacks, plugin loading).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.clihelpers import Ran, clean_env, run_here, run_process

__all__ = ["Cli", "Ran"]

DEMO_SYMBOLS = ("AAA", "BBB")
DEMO_DAYS = 20


class Cli:
    """The CLI bound to one data directory; ``symbols`` are the demo symbols stored there."""

    def __init__(self, data_dir: Path, symbols: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.symbols = symbols

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(**({"TRADERUNNER_DATA_DIR": str(self.data_dir)} | extra))

    def __call__(self, *args: str) -> Ran:
        return run_here(args, {"TRADERUNNER_DATA_DIR": str(self.data_dir)})

    def subprocess(self, *args: str, cwd: Path | None = None, **env: str) -> Ran:
        return run_process(args, self.env(**env), cwd=cwd or self.data_dir.parent)


@pytest.fixture(scope="module")
def demo_cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """A data directory holding small synthetic demo data (M5, 2 symbols, 20 days).

    Loaded once per module through a real ``python -m traderunner data demo`` process.
    """
    cli = Cli(tmp_path_factory.mktemp("cli-demo"), DEMO_SYMBOLS)
    ran = cli.subprocess(
        "data", "demo", "--symbols", ",".join(DEMO_SYMBOLS), "--days", str(DEMO_DAYS)
    )
    assert ran.code == 0, ran.err
    return cli


@pytest.fixture
def empty_cli(tmp_path: Path) -> Cli:
    """A fresh, empty data directory."""
    return Cli(tmp_path / "data")
