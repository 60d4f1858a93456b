"""``traderunner deploy systemd``: one unit per process, and a target that groups them.

What the units get right (the guide this system comes from used ``Type=forking`` with
``--detach``, which loses the main pid and with it clean stops and restarts):

* ``Type=simple``: every process runs in the foreground; systemd owns its pid and its log
  (journald);
* ``Restart=always`` with ``RestartSec`` and a start limit (``StartLimitBurst`` starts within
  ``StartLimitIntervalSec``), so a process that keeps crashing stops being restarted and the
  unit shows failed;
* ``KillSignal=SIGTERM`` with ``KillMode=mixed`` for the worker: only its main process gets
  SIGTERM (Celery's warm shutdown: it finishes the jobs in hand and its pool children exit
  with it), and whatever is left gets SIGKILL after ``TimeoutStopSec``, which is longer than
  the job time limit so systemd never kills a draining worker;
* hardening: ``NoNewPrivileges``, ``ProtectSystem=strict`` (only the data directory is
  writable), ``ProtectHome``, ``PrivateTmp``, ``PrivateDevices`` and the kernel protections.
  Not ``MemoryDenyWriteExecute``: numba compiles machine code at run time;
* secrets in ``EnvironmentFile``s (0600, never in the unit): ``traderunner.env`` for what every
  process shares (store URL, data directory) and ``{role}.env`` from ``deploy redis-conf``
  for the process's own Redis user.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

HARDENING = (
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectControlGroups=yes",
    "RestrictSUIDSGID=yes",
    "RestrictRealtime=yes",
    "LockPersonality=yes",
    "UMask=0077",
)


@dataclass(frozen=True, slots=True)
class Unit:
    """One process: its unit name, command, Redis role (its .env) and stop behaviour."""

    name: str
    exec_args: str
    role: str
    description: str
    stop_timeout: int = 30
    kill_mode: str = "control-group"
    command: str = ""  # the traderunner command it needs ("" for the Redis servers)
    redis: bool = False


@dataclass(frozen=True, slots=True)
class SystemdDeploy:
    """What ``deploy systemd`` writes; see the module docstring."""

    out: Path
    traderunner: str  # absolute path of the traderunner executable
    redis_server: str = "/usr/bin/valkey-server"
    conf_dir: str = "/etc/traderunner"
    data_dir: str = "/var/lib/traderunner"
    user: str = "traderunner"
    group: str = "traderunner"
    job_time_limit: int = 3600
    concurrency: int = 0
    with_redis: bool = True

    def units(self, commands: Collection[str]) -> list[Unit]:
        c = f" --concurrency {self.concurrency}" if self.concurrency else ""
        units = []
        if self.with_redis:
            for role in ("durable", "cache"):
                units.append(
                    Unit(
                        f"traderunner-redis-{role}",
                        f"{self.redis_server} {self.conf_dir}/{role}.conf",
                        "",
                        f"traderunner {role} Redis",
                        stop_timeout=120 if role == "durable" else 30,  # AOF flush
                        redis=True,
                    )
                )
        wanted = [
            Unit(
                "traderunner-worker",
                f"{self.traderunner} worker{c}",
                "worker",
                "traderunner worker (Celery)",
                # Never cut a warm shutdown short: the longest job may take the whole limit.
                stop_timeout=self.job_time_limit + 120,
                kill_mode="mixed",
                command="worker",
            ),
            Unit(
                "traderunner-dashboard",
                f"{self.traderunner} dashboard --host 127.0.0.1 --port 8050",
                "dashboard",
                "traderunner dashboard",
                command="dashboard",
            ),
            Unit(
                "traderunner-flower",
                f"{self.traderunner} flower --address 127.0.0.1 --port 5555",
                "dashboard",
                "traderunner Flower (Celery monitor)",
                command="flower",
            ),
            Unit(
                "traderunner-stream",
                f"{self.traderunner} stream",
                "stream",
                "traderunner market-data stream",
                command="stream",
            ),
            Unit(
                "traderunner-trader",
                f"{self.traderunner} trader",
                "trader",
                "traderunner paper trader",
                command="trader",
            ),
        ]
        units += [u for u in wanted if u.command in commands]
        return units

    def unit_text(self, unit: Unit, redis_units: list[str]) -> str:
        after = ["network-online.target", *redis_units]
        lines = [
            "# written by traderunner deploy systemd",
            "[Unit]",
            f"Description={unit.description}",
            "Wants=network-online.target",
            f"After={' '.join(after)}",
            "PartOf=traderunner.target",
            # A unit that fails 5 times within 5 minutes is left failed (systemctl status).
            "StartLimitIntervalSec=300",
            "StartLimitBurst=5",
            "",
            "[Service]",
            "Type=simple",
            f"User={self.user}",
            f"Group={self.group}",
        ]
        if not unit.redis:
            lines += [
                f"EnvironmentFile={self.conf_dir}/traderunner.env",
                f"EnvironmentFile={self.conf_dir}/{unit.role}.env",
                "Environment=PYTHONUNBUFFERED=1",
            ]
        lines += [
            f"ExecStart={unit.exec_args}",
            "Restart=always",
            "RestartSec=5",
            "KillSignal=SIGTERM",
            f"KillMode={unit.kill_mode}",
            f"TimeoutStopSec={unit.stop_timeout}",
            f"WorkingDirectory={self.data_dir}",
            f"ReadWritePaths={self.data_dir}",
            *HARDENING,
            "",
            "[Install]",
            "WantedBy=traderunner.target",
        ]
        return "\n".join(lines) + "\n"

    def target_text(self, names: list[str]) -> str:
        return (
            "# written by traderunner deploy systemd\n"
            "[Unit]\n"
            "Description=traderunner (every process on this machine)\n"
            f"Wants={' '.join(f'{n}.service' for n in names)}\n"
            "\n[Install]\nWantedBy=multi-user.target\n"
        )

    def env_text(self) -> str:
        return (
            "# written by traderunner deploy systemd: shared by every traderunner unit; 0600\n"
            f"TRADERUNNER_DATA_DIR={self.data_dir}\n"
            "# several machines: one PostgreSQL store for all of them\n"
            "#TRADERUNNER_STORE_URL=postgresql+psycopg://traderunner:PASSWORD@db-host/traderunner\n"
            f"TRADERUNNER_JOB_TIME_LIMIT={self.job_time_limit}\n"
        )

    def write(self, commands: Collection[str]) -> list[Path]:
        self.out.mkdir(parents=True, exist_ok=True)
        units = self.units(commands)
        redis_units = [f"{u.name}.service" for u in units if u.redis]
        written = []
        for unit in units:
            path = self.out / f"{unit.name}.service"
            path.write_text(self.unit_text(unit, [] if unit.redis else redis_units))
            written.append(path)
        target = self.out / "traderunner.target"
        target.write_text(self.target_text([u.name for u in units]))
        written.append(target)
        env = self.out / "traderunner.env"
        fd = os.open(env, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.env_text())
        written.append(env)
        return written
