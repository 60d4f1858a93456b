"""What the first ``up`` of a data directory sets up: demo candles, demo live strategies and
an admin user.

Each only when missing, so a second ``up`` changes nothing: a store with candles keeps them,
a store with users gets no new one, and the demo live strategies (``demo-sma_cross`` and
``demo-rsi_reversion`` on the demo symbols, M5, paper account ``demo``) are added once per
data directory (``{data_dir}/demo-live.added`` remembers it, so one removed with
``traderunner live remove`` stays removed), through the same checks ``live add`` makes.
The admin's random password is shown once (by the caller) and kept in
``{data_dir}/admin.password`` (0600) for the user to read again.

``up`` runs it in a short-lived child process (:func:`first_run_in_child`): the store, pandas
and argon2 it needs would otherwise stay in ``up``'s memory for as long as it runs.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from traderunner.config import Settings

if TYPE_CHECKING:
    from traderunner.store import Store

ADMIN = "admin"
ADMIN_PASSWORD_FILE = "admin.password"
DEMO_LIVE_MARKER = "demo-live.added"
#: (live strategy name, strategy): what the stream runs and the trader trades on a first ``up``.
DEMO_LIVE = (("demo-sma_cross", "sma_cross"), ("demo-rsi_reversion", "rsi_reversion"))
DEMO_ACCOUNT = "demo"
DEMO_TIMEFRAME = "M5"


@dataclass(frozen=True, slots=True)
class FirstRun:
    """What was done: demo series loaded (``symbol timeframe``), the admin created (its
    password, shown once) and where the password is kept."""

    demo_loaded: tuple[str, ...]
    admin_password: str | None
    password_file: Path
    users: int
    demo_live: tuple[str, ...] = ()


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
        demo_live = _add_demo_live(store, settings.data_dir / DEMO_LIVE_MARKER) if demo else ()
        password = None
        users = store.users.list()
        if not users:
            password = secrets.token_urlsafe(15)
            # The file first: a crash between the two leaves a password without a user (the
            # next up makes a new one), never a user whose password nobody knows.
            write_secret(password_file, f"{ADMIN}:{password}\n")
            Accounts(store).add(ADMIN, password, admin=True)
            users = store.users.list()
        return FirstRun(loaded, password, password_file, len(users), demo_live)
    finally:
        store.close()


def _add_demo_live(store: Store, marker: Path) -> tuple[str, ...]:
    """Add the demo live strategies once (``marker``), on the demo symbols the store holds."""
    from traderunner.domain.live import LiveStrategy
    from traderunner.jobs.spec import add_live
    from traderunner.marketdata import DEMO_SYMBOLS
    from traderunner.strategies import get_strategy

    if marker.exists():
        return ()
    held = {
        (s.symbol, str(getattr(s.timeframe, "value", s.timeframe)))
        for s in store.candles.list_series()
    }
    symbols = tuple(s for s in DEMO_SYMBOLS if (s, DEMO_TIMEFRAME) in held)
    added: list[str] = []
    if symbols:  # a store of the user's own data without the demo's: nothing to add
        for name, strategy in DEMO_LIVE:
            cls = get_strategy(strategy)
            live = LiveStrategy(
                name=name,
                strategy=cls.name,
                symbols=symbols,
                timeframe=DEMO_TIMEFRAME,
                params=cls.make_params({}).to_dict(),
                account=DEMO_ACCOUNT,
            )
            if add_live(store, live) is not None:
                added.append(name)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("the demo live strategies were added here once; up adds them no more\n")
    return tuple(added)


def first_run_in_child(env: Mapping[str, str]) -> FirstRun:
    """:func:`first_run` in a fresh interpreter with ``env`` (the children's settings)."""
    proc = subprocess.run(
        [sys.executable, "-m", "traderunner.ops.firstrun"],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        from traderunner.errors import StoreError

        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise StoreError(f"first-run set-up failed: {lines[-1] if lines else proc.returncode}")
    data = json.loads(proc.stdout)
    return FirstRun(
        tuple(data["demo_loaded"]),
        data["admin_password"],
        Path(data["password_file"]),
        int(data["users"]),
        tuple(data["demo_live"]),
    )


if __name__ == "__main__":  # pragma: no cover - run by first_run_in_child
    from traderunner.config import load_settings

    done = first_run(load_settings())
    print(
        json.dumps(
            {
                "demo_loaded": list(done.demo_loaded),
                "admin_password": done.admin_password,
                "password_file": str(done.password_file),
                "users": done.users,
                "demo_live": list(done.demo_live),
            }
        )
    )
