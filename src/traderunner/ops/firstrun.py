"""What the first ``up`` of a data directory sets up: demo candles and an admin user.

Both only when missing, so a second ``up`` changes nothing: a store with candles keeps them,
a store with users gets no new one. The admin's random password is shown once (by the caller)
and kept in ``{data_dir}/admin.password`` (0600) for the user to read again.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from traderunner.config import Settings

ADMIN = "admin"
ADMIN_PASSWORD_FILE = "admin.password"


@dataclass(frozen=True, slots=True)
class FirstRun:
    """What was done: demo series loaded (``symbol timeframe``), the admin created (its
    password, shown once) and where the password is kept."""

    demo_loaded: tuple[str, ...]
    admin_password: str | None
    password_file: Path
    users: int


def write_secret(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def first_run(settings: Settings, *, demo: bool = True) -> FirstRun:
    """Migrate the store, load the demo candles if it has none, add ``admin`` if it has no user."""
    from traderunner.dashboard.accounts import Accounts
    from traderunner.marketdata import DEMO_SYMBOLS, load_demo
    from traderunner.store import Store

    if not settings.store_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    password_file = settings.data_dir / ADMIN_PASSWORD_FILE
    store = Store.from_settings(settings)
    try:
        loaded: tuple[str, ...] = ()
        if demo and not store.candles.list_series():
            infos = load_demo(store, list(DEMO_SYMBOLS))
            loaded = tuple(f"{i.symbol} {i.timeframe}" for i in infos)
        password = None
        users = store.users.list()
        if not users:
            password = secrets.token_urlsafe(15)
            # The file first: a crash between the two leaves a password without a user (the
            # next up makes a new one), never a user whose password nobody knows.
            write_secret(password_file, f"{ADMIN}:{password}\n")
            Accounts(store).add(ADMIN, password, admin=True)
            users = store.users.list()
        return FirstRun(loaded, password, password_file, len(users))
    finally:
        store.close()
