"""Running the real CLI from tests: in this process (fast) or as ``python -m traderunner``.

Both take the TRADERUNNER_* settings explicitly: nothing of the caller's own TRADERUNNER_*
environment leaks into the run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class Ran:
    """One CLI run: its exit code and what it printed."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout parsed as exactly one JSON document (fails on anything else)."""
        return json.loads(self.out)

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without any TRADERUNNER_* variable, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADERUNNER_")}
    env.update(values)
    return env


def run_process(
    args: Sequence[str], env: Mapping[str, str], *, cwd: Path | None = None, timeout: float = 120
) -> Ran:
    """``python -m traderunner ARGS`` in a fresh process with exactly ``env``."""
    proc = subprocess.run(
        [sys.executable, "-m", "traderunner", *args],
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr)


def run_here(
    args: Sequence[str],
    settings: Mapping[str, str],
    *,
    cwd: Path | None = None,
    stdin: str | None = None,
) -> Ran:
    """The CLI's ``main`` in this process, with only the TRADERUNNER_* values of ``settings``
    (and ``stdin`` as standard input, when given: not a terminal).

    The exit code is the process's would-be code: SystemExit(None) is 0, an int is itself, a
    message is 1 (what Python's own exit does with it).
    """
    from traderunner.cli import main

    out, err = io.StringIO(), io.StringIO()
    with (
        pytest.MonkeyPatch.context() as mp,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        for key in [k for k in os.environ if k.startswith("TRADERUNNER_")]:
            mp.delenv(key)
        for key, value in settings.items():
            if key.startswith("TRADERUNNER_"):
                mp.setenv(key, value)
        if cwd is not None:
            mp.chdir(cwd)
        if stdin is not None:
            mp.setattr("sys.stdin", io.StringIO(stdin))
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        else:
            code = 0
    return Ran(code, out.getvalue(), err.getvalue())
