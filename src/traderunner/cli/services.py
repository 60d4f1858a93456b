"""``traderunner redis ...``, ``traderunner worker`` and ``traderunner flower``.

With no ``TRADERUNNER_REDIS_URL`` traderunner runs its own two Valkey servers (see
``redisdb/embedded.py``); ``worker`` and ``flower`` start them when they are not running.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from typing import Annotated, Any

import typer

from traderunner.cli import common

redis_app = typer.Typer(help="The embedded Redis (Valkey) servers.", no_args_is_help=True)


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
def redis_start(ctx: typer.Context) -> None:
    """Start the durable and the cache server (a running one is left as it is)."""
    for server in _servers(ctx):
        server.start()
    _print_status(ctx)


@redis_app.command("stop")
def redis_stop(ctx: typer.Context) -> None:
    """Stop both servers (the durable one flushes its AOF first)."""
    for server in _servers(ctx):
        stopped = server.stop()
        common.out_console().print(f"{server.role}: {'stopped' if stopped else 'was not running'}")


@redis_app.command("status")
def redis_status(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
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
    """Start the embedded servers when traderunner manages them."""
    if settings.embedded_redis:
        from traderunner.redisdb.embedded import embedded_servers

        for server in embedded_servers(settings):
            server.start()


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
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "traderunner.jobs.celery_app",
        "flower",
        f"--address={address}",
        f"--port={port}",
        f"--basic-auth={user}:{password}",
        "--purge_offline_workers=60",
    ]
    raise typer.Exit(subprocess.call(cmd, env=env))


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
