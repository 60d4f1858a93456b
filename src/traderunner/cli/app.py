"""The ``traderunner`` command: the Typer app, the root callback and ``main()``.

``main()`` is the one place errors become exit codes:

* :class:`~traderunner.errors.TraderunnerError` (bad input, bad data, store down ...): one line
  ``error: ...`` on stderr, exit 2 (a cancelled run exits 130);
* Click usage errors (unknown flag, ``--size abc``): one line too, Click's exit code (2);
* anything else: one line plus a hint to rerun with ``TRADERUNNER_DEBUG=1`` for the
  traceback, exit 1;
* a command that waited for a job exits with the job's outcome: 3 failed, 4 cancelled, 130
  detached (``cli/jobs.py``; the table is in ``docs/operations.md``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from traderunner import __version__
from traderunner.cli import backtest as backtest_cmds
from traderunner.cli import common
from traderunner.cli.cache import cache_app
from traderunner.cli.dashboard import dashboard, user_app
from traderunner.cli.data import data_app
from traderunner.cli.jobs import jobs_app
from traderunner.cli.live import live_app
from traderunner.cli.ops import backup_app, deploy_app, doctor, up
from traderunner.cli.results import results_app
from traderunner.cli.services import flower, redis_app, worker, workers
from traderunner.cli.trading import account, orders, positions, signals_app, stream, trader_app
from traderunner.errors import CancelledError, TraderunnerError

app = typer.Typer(
    name="traderunner",
    help="Trading research: backtests, parameter sweeps, market data and durable jobs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Data directory (store, caches); overrides TRADERUNNER_DATA_DIR.",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Settings file (TOML); default: traderunner.toml in the data directory. "
            "TRADERUNNER_* environment variables win over it.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Settings are read here, once per run, and handed to every command."""
    from traderunner.config import load_settings

    overrides: dict[str, Any] = {} if data_dir is None else {"data_dir": data_dir}
    if config is not None:
        overrides["config"] = config
    ctx.obj = common.State(load_settings(**overrides))


app.command("backtest")(backtest_cmds.backtest)
app.command("sweep")(backtest_cmds.sweep)
app.add_typer(data_app, name="data")
app.add_typer(results_app, name="results")
app.add_typer(jobs_app, name="jobs")
app.add_typer(redis_app, name="redis")
app.add_typer(cache_app, name="cache")
app.command("worker")(worker)
app.command("workers")(workers)
app.command("flower")(flower)
app.command("dashboard")(dashboard)
app.add_typer(user_app, name="user")
app.add_typer(live_app, name="live")
app.command("stream")(stream)
app.add_typer(trader_app, name="trader")
app.command("orders")(orders)
app.command("positions")(positions)
app.command("account")(account)
app.add_typer(signals_app, name="signals")
app.command("up")(up)
app.command("doctor")(doctor)
app.add_typer(deploy_app, name="deploy")
app.add_typer(backup_app, name="backup")


@app.command("strategies")
def strategies(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List the strategies (built-in and user) with their parameters and bounds."""
    from traderunner.strategies import available_strategies, strategy_origin

    common.get_state(ctx).load_strategies()
    found = available_strategies()
    if json_output:
        listed = [_strategy_dict(cls) | {"origin": strategy_origin(n)} for n, cls in found.items()]
        common.print_json({"strategies": listed})
        return
    from traderunner.cli.render import strategies_table

    common.out_console().print(strategies_table(found))


def _strategy_dict(cls: Any) -> dict[str, Any]:
    return {
        "name": cls.name,
        "description": cls.description,
        "intraday": bool(cls.intraday),
        "interface_version": cls.interface_version,
        "history_bars": _default_history_bars(cls),
        "params": [
            {
                "name": s.name,
                "type": s.type.__name__,
                "default": s.default,
                "low": s.low,
                "high": s.high,
                "choices": list(s.choices) if s.choices else None,
                "bounds": s.describe_bounds(),
                "doc": s.doc,
            }
            for s in cls.param_specs()
        ],
    }


def _default_history_bars(cls: Any) -> int | None:
    """``history_bars`` of the default parameters (None when the strategy cannot say)."""
    try:
        return int(cls().history_bars())
    except Exception:  # a user strategy's own code: a listing must not fail on it
        return None


@app.command("version")
def version() -> None:
    """Print the traderunner version."""
    typer.echo(f"traderunner {__version__}")


def _fail(message: str, code: int) -> NoReturn:
    # One line, always: collapse any newline a message might carry.
    line = " ".join(message.split())
    sys.stderr.write(f"error: {line}\n")
    sys.stderr.flush()
    sys.exit(code)


def _click_error_types() -> tuple[type[BaseException], ...]:
    # Typer >= 0.20 vendors Click (its errors subclass typer.TyperException); older Typer
    # raises the real click's errors. Catch whichever this install uses.
    found: list[type[BaseException]] = []
    typer_base = getattr(typer, "TyperException", None)
    if isinstance(typer_base, type):
        found.append(typer_base)
    try:
        import click
    except ImportError:
        pass
    else:
        found.append(click.ClickException)
    return tuple(found)


def _abort_types() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [typer.Abort]
    try:
        import click
    except ImportError:
        pass
    else:
        found.append(click.exceptions.Abort)
    return tuple(found)


_CLICK_ERRORS = _click_error_types()
_ABORTS = _abort_types()


def _usage_failure(exc: BaseException) -> NoReturn:
    code = int(getattr(exc, "exit_code", 2))
    if type(exc).__name__ == "NoArgsIsHelpError":
        # Bare ``traderunner`` / ``traderunner data``: show the help, as Click does.
        sys.stderr.write(str(getattr(exc, "format_message", exc.__str__)()) + "\n")
        sys.exit(code)
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None)
    hint = f" (see '{path} --help')" if path else ""
    _fail(f"{message}{hint}", code)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: run the app and turn every failure into one line."""
    command = typer.main.get_command(app)
    try:
        code = command.main(
            args=list(argv) if argv is not None else None,
            prog_name="traderunner",
            standalone_mode=False,
        )
    except CancelledError as exc:
        _fail(str(exc) or "cancelled", 130)
    except TraderunnerError as exc:
        _fail(str(exc) or type(exc).__name__, 2)
    except _CLICK_ERRORS as exc:
        _usage_failure(exc)
    except _ABORTS:
        _fail("aborted", 130)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:
        # Read directly, not from Settings: this must work when the settings themselves fail.
        if os.environ.get("TRADERUNNER_DEBUG", "").strip() not in ("", "0", "false", "no"):
            raise
        _fail(
            f"unexpected {type(exc).__name__}: {exc} "
            "(run with TRADERUNNER_DEBUG=1 for the traceback)",
            1,
        )
    sys.exit(code if isinstance(code, int) else 0)
