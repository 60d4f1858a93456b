"""``traderunner redis ...``, ``traderunner worker`` and ``traderunner flower``.

With no ``TRADERUNNER_REDIS_URL`` traderunner runs its own two Valkey servers (see
``redisdb/embedded.py``); ``worker`` and ``flower`` start them when they are not running.
"""

from __future__ import annotations

import os
import secrets
import sys
from typing import Annotated, Any

import typer

from traderunner.cli import common

redis_app = typer.Typer(help="The embedded Redis (Valkey) servers.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout.")]


def _servers(ctx: typer.Context) -> tuple[Any, ...]:
    from traderunner.errors import ConfigError
    from traderunner.redisdb.connection import mask_url
    from traderunner.redisdb.embedded import embedded_servers

    settings = common.get_state(ctx).settings
    if not settings.embedded_redis:
        raise ConfigError(
            f"TRADERUNNER_REDIS_URL is set ({mask_url(settings.redis_url)}): traderunner does "
            "not manage that server; unset it to use the embedded one"
        )
    return embedded_servers(settings)


@redis_app.command("start")
def redis_start(ctx: typer.Context, json_output: JsonOpt = False) -> None:
    """Start the durable and the cache server (a running one is left as it is)."""
    for server in _servers(ctx):
        server.start()
    _print_status(ctx, json_output=json_output)


@redis_app.command("stop")
def redis_stop(ctx: typer.Context, json_output: JsonOpt = False) -> None:
    """Stop both servers (the durable one flushes its AOF first)."""
    stopped = {server.role: server.stop() for server in _servers(ctx)}
    if json_output:
        common.print_json(
            {"servers": [{"role": role, "stopped": done} for role, done in stopped.items()]}
        )
        return
    for role, done in stopped.items():
        common.out_console().print(f"{role}: {'stopped' if done else 'was not running'}")


@redis_app.command("status")
def redis_status(ctx: typer.Context, json_output: JsonOpt = False) -> None:
    """Which servers run, on which ports, with which files."""
    _print_status(ctx, json_output=json_output)


def _print_status(ctx: typer.Context, *, json_output: bool = False) -> None:
    settings = common.get_state(ctx).settings
    rows = []
    for server in _servers(ctx):
        st = server.status()
        rows.append(
            {
                "role": st.role,
                "running": st.running,
                "detail": st.detail,
                "pid": st.pid,
                "address": f"{st.bind}:{st.port}",
                "config": str(st.config),
                "log": str(st.log),
                "data": str(st.directory),
            }
        )
    password_file = str(settings.redis_dir / "password")
    if json_output:
        common.print_json({"servers": rows, "password_file": password_file})
        return
    from rich.table import Table

    table = Table(title="embedded Redis (Valkey)")
    for col in ("role", "state", "pid", "address", "data dir", "log"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["role"], r["detail"], str(r["pid"] or ""), r["address"], r["data"], r["log"]
        )
    console = common.out_console()
    console.print(table)
    console.print(f"password file: {password_file} (mode 0600)")


def ensure_redis(settings: Any) -> None:
    """Start the embedded servers when traderunner manages them, saying so when it did.

    For commands that write (submit, cancel, retry, worker, flower, fetch). The servers keep
    running after the command: the note says how they are stopped.
    """
    if not settings.embedded_redis:
        return
    from traderunner.redisdb.embedded import embedded_servers

    started = []
    for server in embedded_servers(settings):
        if server.ping() != "ok":
            server.start()
            started.append(f"{server.role} on {server.bind}:{server.port}")
    if started:
        common.err_console().print(
            f"started the embedded Redis servers ({', '.join(started)}); they keep running "
            "after this command: 'traderunner redis stop' stops them",
            markup=False,
            soft_wrap=True,
        )


def worker(
    ctx: typer.Context,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", "-c", min=1, max=256, help="Worker processes (default: one per CPU)."
        ),
    ] = None,
    queues: Annotated[
        str, typer.Option("--queues", "-Q", help="Queues to serve, in order: interactive,batch.")
    ] = "interactive,batch",
    pool: Annotated[str, typer.Option("--pool", help="prefork (default), solo or threads.")] = (
        "prefork"
    ),
    loglevel: Annotated[str, typer.Option("--loglevel")] = "INFO",
) -> None:
    """Run a Celery worker for backtests and sweep chunks (TERM = warm shutdown)."""
    from traderunner.domain.jobs import Queue
    from traderunner.errors import UserInputError
    from traderunner.jobs.worker import run_worker

    settings = common.get_state(ctx).settings
    try:
        chosen = tuple(Queue(q.strip()) for q in queues.split(",") if q.strip())
    except ValueError:
        raise UserInputError(f"--queues {queues!r}: use interactive and/or batch") from None
    if not chosen:
        raise UserInputError("--queues is empty: use interactive,batch")
    if pool not in ("prefork", "solo", "threads"):
        raise UserInputError(f"--pool {pool!r}: use prefork, solo or threads")
    ensure_redis(settings)
    code = run_worker(
        settings, concurrency=concurrency, queues=chosen, loglevel=loglevel, pool=pool
    )
    if code:
        raise typer.Exit(code)  # so a supervisor sees the failure and restarts the worker


def workers(ctx: typer.Context, json_output: JsonOpt = False) -> None:
    """The live workers: where they run, their queues and the strategies they have loaded."""
    from traderunner.cli.jobs import job_client

    with job_client(ctx, reading=True) as client:
        found = client.workers() if client.live else []
    if json_output:
        common.print_json({"workers": [w.to_dict() for w in found]})
        return
    out = common.out_console()
    if not found:
        out.print("no worker is running: start one with 'traderunner worker'")
        return
    from rich.table import Table

    table = Table(title=f"{len(found)} live worker(s)")
    for col in ("node", "pid", "queues", "started", "strategies (version)"):
        table.add_column(col)
    for w in found:
        names = ", ".join(f"{n} ({v[:6]})" for n, v in sorted(w.strategies.items()))
        table.add_row(w.node, str(w.pid), ",".join(w.queues), w.started, names)
    out.print(table)


def flower(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 5555,
    address: Annotated[str, typer.Option("--address", help="Bind address.")] = "127.0.0.1",
) -> None:
    """Celery's Flower monitor, with basic auth (login printed; password kept in a 0600 file)."""
    settings = common.get_state(ctx).settings
    ensure_redis(settings)
    user, password = flower_login(settings)
    common.err_console().print(f"Flower on http://{address}:{port}  login: {user} / {password}")
    env = dict(os.environ)
    env["TRADERUNNER_DATA_DIR"] = str(settings.data_dir)
    if settings.config is not None:  # Flower's Celery app reads the same settings file
        env["TRADERUNNER_CONFIG"] = str(settings.config)
    # The login goes in the environment (Flower reads FLOWER_* options from it), never on the
    # command line, where every user's `ps` would show it; /proc/PID/environ is the owner's.
    env["FLOWER_BASIC_AUTH"] = f"{user}:{password}"
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "traderunner.jobs.celery_app",
        "flower",
        f"--address={address}",
        f"--port={port}",
        "--purge_offline_workers=60",
    ]
    # exec, not a child: no idle Python process waits beside Flower (memory of ``up``), and a
    # supervisor's SIGTERM reaches Flower itself.
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, cmd, env)


def flower_login(settings: Any) -> tuple[str, str]:
    """The Flower login, generated once into ``{data_dir}/flower.password`` (0600)."""
    path = settings.data_dir / "flower.password"
    if path.exists():
        text = path.read_text().strip()
        if ":" in text:
            user, password = text.split(":", 1)
            return user, password
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"admin:{password}\n")
    return "admin", password
