"""Running ``traderunner up`` as a real process in tests, and looking at its process tree."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.redishelpers import embedded_env, free_port


def descendants(pid: int) -> dict[int, str]:
    """Every live descendant of ``pid`` with its command line (from /proc)."""
    parents: dict[int, int] = {}
    cmdlines: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if fields[0] == "Z":
                continue
            parents[int(entry)] = int(fields[1])
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdlines[int(entry)] = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in found:
                found[child] = cmdlines.get(child, "")
                frontier.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class UpProcess:
    """``python -m traderunner up`` on free ports in ``data_dir``; stderr goes to a file."""

    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    dashboard_port: int = 0
    flower_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    args: tuple[str, ...] = ()

    @classmethod
    def create(cls, data_dir: Path, *args: str) -> UpProcess:
        env = embedded_env(data_dir)
        return cls(data_dir, env, free_port(), free_port(), args=args)

    def start(self) -> UpProcess:
        self.log = self.data_dir.parent / f"up-{time.monotonic_ns()}.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "traderunner",
                    "up",
                    "--dashboard-port",
                    str(self.dashboard_port),
                    "--flower-port",
                    str(self.flower_port),
                    "--concurrency",
                    "1",
                    "--worker-stop-wait",
                    "30",
                    *self.args,
                ],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def output(self) -> str:
        assert self.log is not None
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 300.0, *, after: int = 0) -> str:
        """Wait until ``text`` appears in the output (past character ``after``)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output
            if text in out[after:]:
                return out
            if self.proc.poll() is not None:
                raise AssertionError(f"up exited ({self.proc.returncode}) before {text!r}:\n{out}")
            time.sleep(0.3)
        raise AssertionError(f"no {text!r} within {timeout:.0f}s:\n{self.output}")

    def terminate(self, timeout: float = 180.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill_tree(self) -> None:
        """Last-resort clean-up after a failed test: everything under up, then up."""
        if self.proc is None:
            return
        for pid in descendants(self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait(10)
