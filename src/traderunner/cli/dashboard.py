"""``traderunner dashboard`` and ``traderunner user add|passwd|remove|list``.

Users live in the store; ``passwd`` and ``remove`` also end the user's dashboard sessions in the
durable Redis (the embedded one is started when traderunner manages it).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from traderunner.cli import common
from traderunner.errors import UserInputError

if TYPE_CHECKING:
    from traderunner.config import Settings
    from traderunner.dashboard.accounts import Accounts

user_app = typer.Typer(help="Dashboard users (kept in the store).", no_args_is_help=True)


def dashboard(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8050,
) -> None:
    """Serve the web dashboard (login required for every page; waitress, threaded)."""
    from traderunner.cli.services import ensure_redis
    from traderunner.dashboard.server import serve

    settings = common.get_state(ctx).settings
    ensure_redis(settings)
    with common.open_store(settings) as store:  # creates the data folder; migrates the store
        if not store.users.list():
            common.err_console().print(
                "no dashboard user yet: add one with 'traderunner user add NAME --admin'",
                markup=False,
            )

    def ready(url: str) -> None:
        common.err_console().print(f"dashboard on {url}  (Ctrl-C stops it)", markup=False)

    serve(settings, host=host, port=port, on_ready=ready)


@contextmanager
def _accounts(settings: Settings, *, sessions: bool) -> Iterator[Accounts]:
    from traderunner.dashboard.accounts import Accounts, LoginLimits

    with common.open_store(settings) as store:
        if not sessions:
            yield Accounts(store)
            return
        from traderunner.cli.services import ensure_redis
        from traderunner.dashboard.sessions import SessionStore
        from traderunner.redisdb.connection import open_clients

        ensure_redis(settings)
        clients = open_clients(settings, name="traderunner-cli")
        limits = LoginLimits.from_settings(settings, clients.urls.durable)
        try:
            store_sessions = SessionStore(
                clients.durable,
                clients.keys,
                ttl=settings.dashboard_session_ttl,
                max_age=settings.dashboard_session_max_age,
            )
            yield Accounts(store, sessions=store_sessions, limits=limits)
        finally:
            limits.close()
            clients.close()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise UserInputError("--password-stdin: nothing on standard input; pipe the password")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise UserInputError("no terminal to ask the password on: pipe it with --password-stdin")
    first = typer.prompt("Password", hide_input=True)
    second = typer.prompt("Repeat the password", hide_input=True)
    if first != second:
        raise UserInputError("the two passwords differ: nothing was changed; try again")
    return str(first)


_PASSWORD_STDIN = typer.Option(
    "--password-stdin", help="Read the password from the first line of standard input."
)


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name: lower-case letters, digits, _ . -")],
    admin: Annotated[bool, typer.Option("--admin", help="May see every user's jobs.")] = False,
    password_stdin: Annotated[bool, _PASSWORD_STDIN] = False,
) -> None:
    """Add a dashboard user (the password is asked twice, or read with --password-stdin)."""
    from traderunner.dashboard.accounts import check_password, normalize_name

    settings = common.get_state(ctx).settings
    checked = normalize_name(name)  # a bad name fails before the password is asked
    password = _read_password(password_stdin)
    check_password(password)
    with _accounts(settings, sessions=False) as accounts:
        user = accounts.add(checked, password, admin=admin)
    common.out_console().print(
        f"user {user.name} added{' (admin)' if user.admin else ''}", markup=False
    )


@user_app.command("passwd")
def user_passwd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user.")],
    password_stdin: Annotated[bool, _PASSWORD_STDIN] = False,
) -> None:
    """Set a user's password; their dashboard sessions end at once."""
    from traderunner.dashboard.accounts import check_password, normalize_name

    settings = common.get_state(ctx).settings
    checked = normalize_name(name)
    with _accounts(settings, sessions=False) as accounts:
        if accounts.store.users.get(checked) is None:
            raise UserInputError(f"no user {checked!r}: see 'traderunner user list'")
    password = _read_password(password_stdin)
    check_password(password)
    with _accounts(settings, sessions=True) as accounts:
        ended = accounts.passwd(checked, password)
    common.out_console().print(
        f"password of {checked} changed; {ended} session(s) ended", markup=False
    )


@user_app.command("remove")
def user_remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user.")],
) -> None:
    """Remove a user and end their dashboard sessions at once (their jobs and results stay)."""
    settings = common.get_state(ctx).settings
    with _accounts(settings, sessions=True) as accounts:
        ended = accounts.remove(name)
    common.out_console().print(
        f"user {name.strip().lower()} removed; {ended} session(s) ended", markup=False
    )


@user_app.command("list")
def user_list(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The dashboard users, with when each was added and last logged in."""
    settings = common.get_state(ctx).settings
    with _accounts(settings, sessions=False) as accounts:
        users = accounts.list()
    if json_output:
        common.print_json({"users": [u.to_dict() for u in users]})
        return
    if not users:
        common.out_console().print(
            "no users yet: add one with 'traderunner user add NAME --admin'", markup=False
        )
        return
    from rich.table import Table

    table = Table(title="dashboard users")
    for col in ("name", "role", "added", "password changed", "last login"):
        table.add_column(col)

    def when(value: Any) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if value is not None else "never"

    for u in users:
        table.add_row(
            u.name,
            "admin" if u.admin else "user",
            when(u.created_at),
            when(u.password_changed_at),
            when(u.last_login_at),
        )
    common.out_console().print(table)
