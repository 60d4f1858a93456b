"""A dashboard app in this process (Flask's test client) on real Valkey and a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from flask.testing import FlaskClient

from tests.redishelpers import RedisPair
from traderunner.config import Settings
from traderunner.dashboard.app import create_app
from traderunner.dashboard.context import DashboardContext

PASSWORD = "correct horse 1"


@dataclass
class Dash:
    settings: Settings
    ctx: DashboardContext
    app: Any
    _clients: ClassVar[int] = 0

    def client(self, *, address: str = "") -> FlaskClient:
        """A browser of its own; from its own loopback address unless one is given (so the
        per-address login limit only counts what one test does)."""
        if not address:
            Dash._clients += 1
            address = f"127.0.{Dash._clients // 250}.{Dash._clients % 250 + 1}"
        client = self.app.server.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        return client


def dashboard_settings(pair: RedisPair, root: Path, **overrides: object) -> Settings:
    return pair.settings(
        root / "data",
        store_url=f"sqlite:///{root / 'store.db'}",
        dashboard_login_user_limit=3,
        dashboard_login_address_limit=8,
        dashboard_login_window=60,
        **overrides,
    )


@pytest.fixture(scope="module")
def dash(redis_pair: RedisPair, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dash]:
    settings = dashboard_settings(redis_pair, tmp_path_factory.mktemp("dashboard"))
    app, ctx = create_app(settings)
    ctx.accounts.add("ana", PASSWORD, admin=True)
    ctx.accounts.add("bob", PASSWORD)
    yield Dash(settings, ctx, app)
    ctx.close()


def login(client: FlaskClient, user: str = "ana", password: str = PASSWORD, **form: str) -> Any:
    return client.post("/login", data={"username": user, "password": password, **form})


def csrf_of(client: FlaskClient) -> str:
    cookie = client.get_cookie("_csrf_token")
    assert cookie is not None, "no CSRF cookie: not logged in"
    return cookie.value
