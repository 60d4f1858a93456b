"""``stream --replay --keep-running`` (what ``traderunner up`` runs): after the last candle the
service stays up, idle, and SIGTERM then ends it with exit code 0; a second run resumes after
the cursor and handles nothing again."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.clihelpers import run_process
from tests.redishelpers import embedded_env

pytestmark = pytest.mark.slow

DONE = "stream: replay done ("


def _stream(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "traderunner", "stream", "--replay", "--speed", "0",
             "--max-wait", "1", "--keep-running"],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip


def _wait_for(proc: subprocess.Popen[bytes], log: Path, text: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = log.read_text(errors="replace")
        if text in out:
            return out
        assert proc.poll() is None, f"stream exited ({proc.returncode}) before {text!r}:\n{out}"
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} within {timeout:.0f}s:\n{log.read_text()}")


def test_a_finished_replay_keeps_running_until_sigterm(tmp_path: Path) -> None:
    env = embedded_env(tmp_path / "data")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        assert run_process(["data", "demo", "--days", "2", "--symbols", "AAPL"], env).code == 0
        added = run_process(["live", "add", "k", "--strategy", "sma_cross", "-s", "AAPL"], env)
        assert added.code == 0, added.err
        for run, log in enumerate((tmp_path / "first.log", tmp_path / "second.log")):
            proc = _stream(env, log)
            procs.append(proc)
            out = _wait_for(proc, log, DONE)
            handled = int(out.split(DONE, 1)[1].split()[0])
            # the first run handles both days' bars, the second resumes after the cursor
            assert handled > 100 if run == 0 else handled == 0, out
            time.sleep(1.5)
            assert proc.poll() is None  # still running after its last candle
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0, log.read_text()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        run_process(["redis", "stop"], env)
