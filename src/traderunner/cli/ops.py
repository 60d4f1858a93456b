"""``traderunner up``: the whole system on this machine, supervised (``ops/up.py``)."""

from __future__ import annotations

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
