"""What ``traderunner up`` runs: one :class:`Child` per process, in one data-driven list.

Adding a process to ``up`` is one entry in :func:`default_children`: its command, how to tell it
is healthy, the URL to print and how it is stopped. Commands that the installed CLI does not
have are left out, and said so.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from traderunner.config import Settings
from traderunner.redisdb.embedded import EmbeddedServer, embedded_servers


@dataclass(frozen=True, slots=True)
class Probe:
    """How ``up`` tells that a child is healthy.

    ``kind``: ``redis`` (an authenticated PING of the embedded server ``target``), ``http``
    (GET ``target`` answers with a status in ``ok_status``) or ``celery`` (a worker answers
    Celery's control ``ping``).
    """

    kind: str
    target: str = ""
    ok_status: tuple[int, ...] = (200,)


@dataclass(frozen=True, slots=True)
class Child:
    """One supervised process.

    ``early`` children (the Redis servers) start first and must be healthy before the others
    start. ``stop_wait`` is how long a stop waits after SIGTERM before SIGKILL (the worker's
    covers its warm shutdown). ``stop_as_group`` sends SIGTERM to the child's whole process
    group (for a CLI that runs its server as a subprocess, like ``flower``); the worker gets it
    in its main process only, whose warm shutdown then stops the pool.
    """

    name: str
    argv: tuple[str, ...]
    probe: Probe
    url: str = ""
    early: bool = False
    priority: int = 100
    stop_wait: int = 20
    stop_as_group: bool = True
    start_secs: int = 3
    note: str = ""


@dataclass(frozen=True, slots=True)
class UpOptions:
    """The choices ``traderunner up`` offers on its command line."""

    dashboard_port: int = 8050
    flower_port: int = 5555
    concurrency: int = 0  # 0: one per core
    worker_stop_wait: int = 60
    replay_speed: float = 60.0
    flower: bool = True
    extra_env: Mapping[str, str] = field(default_factory=dict)


def _cli(*args: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "traderunner", *args)


def redis_children(settings: Settings) -> list[Child]:
    """The embedded durable and cache servers, run in the foreground under the supervisor."""
    out = []
    for server in embedded_servers(settings):
        out.append(
            Child(
                name=f"redis-{server.role}",
                argv=tuple(server.foreground_argv()),
                probe=Probe("redis", server.role),
                url=f"redis://{server.bind}:{server.port}",
                early=True,
                priority=10,
                stop_wait=30,  # SIGTERM: the durable server flushes its AOF first
                stop_as_group=False,
            )
        )
    return out


def default_children(
    settings: Settings, options: UpOptions, commands: Collection[str]
) -> tuple[list[Child], list[str]]:
    """The processes of ``up`` for these settings, and notes on what is left out and why.

    ``commands``: the CLI's command names, so a process whose command does not exist yet is
    skipped rather than crash-looping.
    """
    concurrency = options.concurrency or os.cpu_count() or 1
    children: list[Child] = []
    notes: list[str] = []
    if settings.embedded_redis:
        children.extend(redis_children(settings))
    else:
        notes.append("Redis: external (TRADERUNNER_REDIS_URL), not started by up")
    dash = f"http://127.0.0.1:{options.dashboard_port}"
    wanted: list[Child] = [
        Child(
            name="worker",
            argv=_cli("worker", "--concurrency", str(concurrency)),
            probe=Probe("celery"),
            priority=50,
            stop_wait=options.worker_stop_wait,
            stop_as_group=False,
            start_secs=5,
            note=f"{concurrency} pool process(es)",
        ),
        Child(
            name="stream",
            # The replay resumes after the last bar handled (the stream's cursor) and, once
            # done, keeps running idle: a finished replay is not a crash to restart.
            argv=_cli(
                "stream",
                "--replay",
                "--speed",
                f"{options.replay_speed:g}",
                "--max-wait",
                "10",  # nights and weekends: 10 s, not hours
                "--keep-running",
            ),
            probe=Probe("running"),
            priority=60,
            note=f"replaying the live strategies' stored candles at {options.replay_speed:g}x",
        ),
        Child(
            name="trader",
            argv=_cli("trader"),
            probe=Probe("running"),
            priority=55,  # stopped after the stream (supervisord stops highest number first)
            note="paper trading the live strategies' signals",
        ),
        Child(
            name="dashboard",
            argv=_cli("dashboard", "--port", str(options.dashboard_port)),
            probe=Probe("http", f"{dash}/healthz"),
            url=dash,
            priority=70,
        ),
    ]
    if options.flower:
        flower = f"http://127.0.0.1:{options.flower_port}"
        wanted.append(
            Child(
                name="flower",
                argv=_cli("flower", "--port", str(options.flower_port)),
                # Flower answers 401 without its login: any HTTP answer means it serves.
                probe=Probe("http", f"{flower}/healthcheck", ok_status=(200, 401)),
                url=flower,
                priority=80,
            )
        )
    for child in wanted:
        if child.argv[3] in commands:
            children.append(child)
        else:
            notes.append(f"{child.name}: this traderunner has no '{child.argv[3]}' command yet")
    return children, notes


def embedded_by_role(settings: Settings) -> dict[str, EmbeddedServer]:
    return {s.role: s for s in embedded_servers(settings)}
