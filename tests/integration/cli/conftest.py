"""Run the real ``traderunner`` CLI against a temporary data directory.

``cli(...)`` calls :func:`traderunner.cli.main` in this process (the real app, the real store,
the real engine; fast because imports and numba kernels are shared), capturing stdout, stderr
and the exit code. ``cli.subprocess(...)`` runs ``python -m traderunner`` in a fresh process,
for what only a real process shows (import cost, tracebacks, plugin loading).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from traderunner.cli import main

DEMO_SYMBOLS = ("AAA", "BBB")
DEMO_DAYS = 20


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout parsed as exactly one JSON document (fails on anything else)."""
        return json.loads(self.out)

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


class Cli:
    """The CLI bound to one data directory; ``symbols`` are the demo symbols stored there."""

    def __init__(self, data_dir: Path, symbols: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.symbols = symbols

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRADERUNNER_")}
        env["TRADERUNNER_DATA_DIR"] = str(self.data_dir)
        env.update(extra)
        return env

    def __call__(self, *args: str) -> Ran:
        out, err = io.StringIO(), io.StringIO()
        code: int
        with (
            pytest.MonkeyPatch.context() as mp,
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            for key in [k for k in os.environ if k.startswith("TRADERUNNER_")]:
                mp.delenv(key)
            mp.setenv("TRADERUNNER_DATA_DIR", str(self.data_dir))
            try:
                main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            else:
                code = 0
        return Ran(code, out.getvalue(), err.getvalue())

    def subprocess(self, *args: str, cwd: Path | None = None, **env: str) -> Ran:
        proc = subprocess.run(
            [sys.executable, "-m", "traderunner", *args],
            capture_output=True,
            text=True,
            env=self.env(**env),
            cwd=cwd or self.data_dir.parent,
            timeout=120,
            check=False,
        )
        return Ran(proc.returncode, proc.stdout, proc.stderr)


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
