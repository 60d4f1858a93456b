"""``up``'s process supervisor: Supervisor's ``supervisord`` (PyPI ``supervisor``), run by us.

Why supervisord (docs/operations.md has the comparison): it is pure Python (no ZeroMQ, unlike
circus), long maintained, and does what ``up`` needs out of the box: process groups, SIGTERM
then SIGKILL after a per-program wait, restart with increasing back-off for a child that dies
while starting and FATAL after a number of tries, per-child log files with rotation, and an
XML-RPC interface on a 0700 unix socket that ``up`` polls to report restarts and health.

``up`` writes ``{data_dir}/up/supervisord.conf``, runs ``supervisord -n`` in its own session
(Ctrl-C reaches ``up``, which stops the supervisor once, cleanly) with the parent-death signal
set, so a killed ``up`` still takes its children down.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traderunner.errors import TraderunnerError
from traderunner.ops.children import Child

_PR_SET_PDEATHSIG = 1


class SupervisorError(TraderunnerError):
    """supervisord did not start, or does not answer."""


@dataclass(frozen=True, slots=True)
class ChildState:
    """One child as supervisord reports it."""

    name: str
    state: str  # STOPPED STARTING RUNNING BACKOFF STOPPING EXITED FATAL UNKNOWN
    pid: int
    exit_status: int
    description: str
    log: str
    start: int = 0  # when this instance was spawned (epoch s): a new value is a restart


def _escape(value: str) -> str:
    # supervisord expands %(name)s in values: a literal % is written %%.
    return value.replace("%", "%%")


class Supervisor:
    """One supervisord for one data directory's ``up``."""

    def __init__(self, run_dir: Path, children: Sequence[Child]) -> None:
        self.run_dir = run_dir
        self.log_dir = run_dir / "logs"
        self.children = list(children)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.run_dir / "supervisord.conf"

    @property
    def socket_path(self) -> Path:
        return self.run_dir / "supervisor.sock"

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def config_text(self) -> str:
        sock = _escape(str(self.socket_path))
        lines = [
            "; written by traderunner up; edits are overwritten",
            "[unix_http_server]",
            f"file={sock}",
            "chmod=0700",
            "",
            "[supervisord]",
            "nodaemon=true",
            "silent=true",
            f"logfile={_escape(str(self.log_dir / 'supervisord.log'))}",
            "logfile_maxbytes=10MB",
            "logfile_backups=2",
            f"pidfile={_escape(str(self.run_dir / 'supervisord.pid'))}",
            f"childlogdir={_escape(str(self.log_dir))}",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
            "[supervisorctl]",
            f"serverurl=unix://{sock}",
        ]
        for child in self.children:
            lines += [
                "",
                f"[program:{child.name}]",
                f"command={_escape(shlex.join(child.argv))}",
                f"autostart={'true' if child.early else 'false'}",
                "autorestart=true",
                f"startsecs={child.start_secs}",
                "startretries=3",
                "stopsignal=TERM",
                f"stopwaitsecs={child.stop_wait}",
                f"stopasgroup={'true' if child.stop_as_group else 'false'}",
                "killasgroup=true",
                "redirect_stderr=true",
                f"stdout_logfile={_escape(str(self.log_path(child.name)))}",
                "stdout_logfile_maxbytes=20MB",
                "stdout_logfile_backups=3",
                f"priority={child.priority}",
            ]
        return "\n".join(lines) + "\n"

    # -- life cycle ----------------------------------------------------------------------------

    def running_elsewhere(self) -> int | None:
        """The pid of another live supervisord of this data directory (another ``up``), if any."""
        try:
            pid = int((self.run_dir / "supervisord.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        try:
            self.rpc().supervisor.getPID()
        except Exception:
            return None  # a stale pid file whose pid was reused
        return pid

    def start(self, env: Mapping[str, str], timeout: float = 20.0) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self.config_path.write_text(self.config_text())
        out = open(self.log_dir / "supervisord.out", "ab")  # noqa: SIM115 - kept by the child
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(self.config_path)],
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SupervisorError(
                    f"supervisord exited at start (code {self.proc.returncode}); see "
                    f"{self.log_dir / 'supervisord.out'}"
                )
            with contextlib.suppress(OSError, xmlrpc.client.Error):
                self.rpc().supervisor.getState()
                return
            time.sleep(0.1)
        raise SupervisorError(f"supervisord did not answer within {timeout:.0f}s")

    def rpc(self) -> Any:
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, f"unix://{self.socket_path}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def start_child(self, name: str) -> None:
        with contextlib.suppress(xmlrpc.client.Fault):  # ALREADY_STARTED
            self.rpc().supervisor.startProcess(name, False)

    def stop_child(self, name: str) -> None:
        with contextlib.suppress(xmlrpc.client.Fault):  # NOT_RUNNING
            self.rpc().supervisor.stopProcess(name, True)

    def states(self) -> dict[str, ChildState]:
        infos = self.rpc().supervisor.getAllProcessInfo()
        return {
            i["name"]: ChildState(
                name=i["name"],
                state=i["statename"],
                pid=int(i["pid"]),
                exit_status=int(i["exitstatus"]),
                description=i["description"],
                log=i["stdout_logfile"],
                start=int(i["start"]),
            )
            for i in infos
        }

    def shutdown(self, timeout: float) -> int | None:
        """SIGTERM supervisord (it stops every child, highest priority number first) and wait;
        returns its exit code, or None when it had to be killed after ``timeout``."""
        proc = self.proc
        if proc is None:
            return 0
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None


def _die_with_parent() -> None:
    # Linux: supervisord gets SIGTERM when ``up`` dies, even by SIGKILL, and stops the children.
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def tail(path: str | Path, lines: int = 3) -> str:
    """The last lines of a log, joined with ' | ' (for one-line reports)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(size - 8192, 0))
            text = fh.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])
