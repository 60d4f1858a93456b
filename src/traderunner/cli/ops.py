"""``traderunner up``: the whole system on this machine, supervised (``ops/up.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from traderunner.cli import common


def _commands() -> set[str]:
    from traderunner.cli.app import app

    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    names |= {g.name or "" for g in app.registered_groups}
    return names


def up(
    ctx: typer.Context,
    dashboard_port: Annotated[int, typer.Option("--dashboard-port", min=1, max=65535)] = 8050,
    flower_port: Annotated[int, typer.Option("--flower-port", min=1, max=65535)] = 5555,
    concurrency: Annotated[
        int,
        typer.Option("--concurrency", "-c", min=0, max=256, help="Worker pool size (0: cores)."),
    ] = 0,
    worker_stop_wait: Annotated[
        int,
        typer.Option(
            "--worker-stop-wait",
            min=1,
            max=7 * 86400,
            help="Seconds a stopping worker may finish its jobs before it is killed (its "
            "jobs are then re-queued by the reconciler).",
        ),
    ] = 60,
    replay_speed: Annotated[
        float, typer.Option("--replay-speed", min=0.1, help="Stream replay speed (x real time).")
    ] = 60.0,
    no_flower: Annotated[bool, typer.Option("--no-flower", help="Do not run Flower.")] = False,
) -> None:
    """Run everything on this machine (Redis, worker, dashboard, Flower ...) until Ctrl-C."""
    from traderunner.ops.children import UpOptions
    from traderunner.ops.up import run_up

    settings = common.get_state(ctx).settings
    console = common.err_console()

    def report(line: str) -> None:
        console.print(line, markup=False, highlight=False, soft_wrap=True)

    options = UpOptions(
        dashboard_port=dashboard_port,
        flower_port=flower_port,
        concurrency=concurrency,
        worker_stop_wait=worker_stop_wait,
        replay_speed=replay_speed,
        flower=not no_flower,
    )
    raise typer.Exit(run_up(settings, options, _commands(), report))


def doctor(
    ctx: typer.Context,
    canary_deadline: Annotated[
        float,
        typer.Option("--canary-deadline", min=1, help="Seconds the canary job may take."),
    ] = 30.0,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Check the whole deployment; exit 1 when anything failed (usable as a health check).

    Starts nothing: run it against a deployment that should be up.
    """
    from traderunner.ops.doctor import Check, run_doctor

    settings = common.get_state(ctx).settings
    out = common.out_console()

    def show(check: Check) -> None:
        if not json_output:
            style = {"ok": "green", "warn": "yellow", "fail": "red"}[check.status]
            out.print(f"[{style}]{check.status.upper():<4}[/{style}]", end=" ")
            out.print(check.line()[5:], markup=False, highlight=False, soft_wrap=True)

    report = run_doctor(settings, canary_deadline=canary_deadline, on_check=show)
    problems = [c for c in report.checks if c.status != "ok"]
    if json_output:
        common.print_json({"ok": not report.failed, "checks": [c.to_dict() for c in report.checks]})
    elif problems:
        failed = sum(c.status == "fail" for c in problems)
        out.print(f"{failed} failed, {len(problems) - failed} warning(s)", markup=False)
    else:
        out.print("all checks passed", markup=False)
    if report.failed:
        raise typer.Exit(1)


deploy_app = typer.Typer(
    help="Files for a server deployment (hardened Redis configs, systemd units).",
    no_args_is_help=True,
)

_OUT = typer.Option("--out", help="Folder to write into (created).", file_okay=False)


@deploy_app.command("redis-conf")
def deploy_redis_conf(
    ctx: typer.Context,
    out: Annotated[Path, _OUT],
    bind: Annotated[
        str, typer.Option("--bind", help="Address(es) to listen on, space-separated.")
    ] = "127.0.0.1",
    host: Annotated[
        str, typer.Option("--host", help="Name the clients connect to (default: --bind).")
    ] = "",
    durable_port: Annotated[int, typer.Option("--durable-port", min=1, max=65535)] = 6379,
    cache_port: Annotated[int, typer.Option("--cache-port", min=1, max=65535)] = 6380,
    cache_maxmemory: Annotated[str, typer.Option("--cache-maxmemory")] = "1gb",
    durable_dir: Annotated[
        str, typer.Option("--durable-dir", help="The durable server's data folder.")
    ] = "/var/lib/traderunner/redis-durable",
    cache_dir: Annotated[str, typer.Option("--cache-dir")] = "/var/lib/traderunner/redis-cache",
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", dir_okay=False)] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", dir_okay=False)] = None,
    tls_ca: Annotated[Path | None, typer.Option("--tls-ca", dir_okay=False)] = None,
) -> None:
    """durable.conf, cache.conf, users.acl (a user per role) and one 0600 .env per role."""
    from traderunner.errors import UserInputError
    from traderunner.ops.deploy import RedisDeploy

    if (tls_cert is None) != (tls_key is None):
        raise UserInputError("--tls-cert and --tls-key go together: give both, or neither")
    for given in (tls_cert, tls_key, tls_ca):
        if given is not None and not given.is_file():
            raise UserInputError(f"{given}: no such file")
    settings = common.get_state(ctx).settings
    deploy = RedisDeploy(
        out=out.resolve(),
        bind=bind,
        host=host,
        durable_port=durable_port,
        cache_port=cache_port,
        cache_maxmemory=cache_maxmemory,
        durable_dir=durable_dir,
        cache_dir=cache_dir,
        prefix=settings.redis_prefix,
        tls_cert=tls_cert.resolve() if tls_cert else None,
        tls_key=tls_key.resolve() if tls_key else None,
        tls_ca=tls_ca.resolve() if tls_ca else None,
    )
    written = deploy.write()
    console = common.out_console()
    for path in written.values():
        console.print(f"wrote {path}", markup=False)
    console.print(
        "start: valkey-server durable.conf / valkey-server cache.conf (or redis-server 7+); "
        "give each process its role's .env as its EnvironmentFile",
        markup=False,
    )


@deploy_app.command("systemd")
def deploy_systemd(
    ctx: typer.Context,
    out: Annotated[Path, _OUT],
    conf_dir: Annotated[
        str, typer.Option("--conf-dir", help="Where the .env and Redis files will live.")
    ] = "/etc/traderunner",
    data_dir: Annotated[str, typer.Option("--data-dir-path", help="The data folder.")] = (
        "/var/lib/traderunner"
    ),
    user: Annotated[str, typer.Option("--user")] = "traderunner",
    group: Annotated[str, typer.Option("--group")] = "traderunner",
    redis_server: Annotated[
        str, typer.Option("--redis-server", help="valkey-server or redis-server binary.")
    ] = "/usr/bin/valkey-server",
    no_redis: Annotated[
        bool, typer.Option("--no-redis", help="No Redis units (Redis runs elsewhere).")
    ] = False,
    concurrency: Annotated[int, typer.Option("--concurrency", min=0, max=256)] = 0,
) -> None:
    """Unit files for every process (Type=simple, Restart=always, hardened) and a target."""
    import shutil
    import sys

    from traderunner.ops.systemd import SystemdDeploy

    settings = common.get_state(ctx).settings
    exe = shutil.which("traderunner") or str(Path(sys.executable).parent / "traderunner")
    deploy = SystemdDeploy(
        out=out.resolve(),
        traderunner=str(Path(exe).resolve()),
        redis_server=redis_server,
        conf_dir=conf_dir,
        data_dir=data_dir,
        user=user,
        group=group,
        job_time_limit=settings.job_time_limit,
        concurrency=concurrency,
        with_redis=not no_redis,
    )
    console = common.out_console()
    for path in deploy.write(_commands()):
        console.print(f"wrote {path}", markup=False)
    console.print(
        f"install: cp {out}/*.service {out}/traderunner.target /etc/systemd/system/; put "
        f"traderunner.env and the role .env files in {conf_dir} (0600); systemctl daemon-reload; "
        "systemctl enable --now traderunner.target",
        markup=False,
        soft_wrap=True,
    )


backup_app = typer.Typer(
    help="Back up (and restore) the store and the durable Redis.",
    invoke_without_command=True,
)


@backup_app.callback()
def backup_cmd(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option("--out", help="New folder for the backup.", file_okay=False)
    ] = None,
) -> None:
    """Back up the store and the durable Redis into a new folder (--out)."""
    if ctx.invoked_subcommand is not None:
        return
    from traderunner.errors import UserInputError
    from traderunner.ops.backup import backup

    if out is None:
        raise UserInputError("give the folder for the backup: traderunner backup --out DIR")
    settings = common.get_state(ctx).settings
    done = backup(settings, out.resolve())
    extra = f", {done.rdb_file}" if done.rdb_file else ""
    common.out_console().print(
        f"backup in {done.folder}: {done.store_file}, redis.jsonl ({done.redis_keys} keys)"
        f"{extra}; restore with 'traderunner backup restore {done.folder} --yes'",
        markup=False,
        soft_wrap=True,
    )


@backup_app.command("restore")
def backup_restore(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="A folder written by traderunner backup.")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Replace the store and Redis keys (no question).")
    ] = False,
) -> None:
    """Put a backup back (stop up, workers and the dashboard first)."""
    from traderunner.errors import UserInputError
    from traderunner.ops.backup import restore

    if not yes:
        raise UserInputError(
            "restore replaces the store and the durable Redis' keys: stop everything, then "
            "rerun with --yes"
        )
    settings = common.get_state(ctx).settings
    done = restore(settings, folder.resolve())
    common.out_console().print(
        f"restored {done.store_file} and {done.redis_keys} Redis keys from {done.folder}",
        markup=False,
    )
