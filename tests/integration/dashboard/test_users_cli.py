"""``traderunner user ...`` end to end: the store's users and the sessions in the real Valkey."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from tests.clihelpers import run_here
from tests.jobhelpers import settings_env
from tests.redishelpers import RedisPair
from traderunner.dashboard.sessions import SessionStore
from traderunner.redisdb.connection import connect
from traderunner.redisdb.keys import Keys
from traderunner.store import Store


@pytest.fixture(scope="module")
def env(redis_pair: RedisPair, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("users")
    settings = redis_pair.settings(root / "data", store_url=f"sqlite:///{root / 'store.db'}")
    return settings_env(settings)


def _sessions(env: dict[str, str]) -> SessionStore:
    return SessionStore(
        connect(env["TRADERUNNER_REDIS_URL"]), Keys(env["TRADERUNNER_REDIS_PREFIX"])
    )


def test_add_list_and_refusals(env: dict[str, str]) -> None:
    added = run_here(
        ["user", "add", "Ana", "--admin", "--password-stdin"], env, stdin="s3cret-pass\n"
    )
    assert added.code == 0, added.err
    assert added.out.strip() == "user ana added (admin)"
    listed = run_here(["user", "list", "--json"], env).json()["users"]
    assert [(u["name"], u["admin"], u["last_login_at"]) for u in listed] == [("ana", True, None)]
    with Store.connect(env["TRADERUNNER_STORE_URL"]) as store:
        stored = store.users.password_hash("ana")
    assert stored is not None and stored.startswith("$argon2id$")
    assert PasswordHasher().verify(stored, "s3cret-pass")

    for args, stdin, expected in (
        (["user", "add", "ana", "--password-stdin"], "another-pass\n", "exists already"),
        (["user", "add", "bad name!", "--password-stdin"], "another-pass\n", "is not valid"),
        (["user", "add", "zed", "--password-stdin"], "short\n", "too short"),
        (["user", "add", "zed", "--password-stdin"], "", "nothing on standard input"),
        (["user", "add", "zed"], "typed-but-no-tty\n", "--password-stdin"),
        (["user", "remove", "nobody"], None, "no user 'nobody'"),
        (["user", "passwd", "nobody", "--password-stdin"], "another-pass\n", "no user"),
    ):
        ran = run_here(args, env, stdin=stdin)
        assert ran.code == 2, (args, ran.out, ran.err)
        assert len(ran.err_lines) == 1 and expected in ran.err, (args, ran.err)
    assert [u["name"] for u in run_here(["user", "list", "--json"], env).json()["users"]] == ["ana"]


def test_passwd_and_remove_end_the_users_sessions(env: dict[str, str]) -> None:
    assert run_here(["user", "add", "bo", "--password-stdin"], env, stdin="first-pass\n").code == 0
    sessions = _sessions(env)
    one = sessions.create("bo", admin=False)
    two = sessions.create("bo", admin=False)
    other = sessions.create("ana", admin=True)

    changed = run_here(["user", "passwd", "bo", "--password-stdin"], env, stdin="second-pass\n")
    assert changed.code == 0, changed.err
    assert changed.out.strip() == "password of bo changed; 2 session(s) ended"
    assert sessions.resume(one.id) is None and sessions.resume(two.id) is None
    assert sessions.resume(other.id) is not None  # another user's session is untouched
    with Store.connect(env["TRADERUNNER_STORE_URL"]) as store:
        assert PasswordHasher().verify(store.users.password_hash("bo") or "", "second-pass")

    three = sessions.create("bo", admin=False)
    removed = run_here(["user", "remove", "bo"], env)
    assert removed.code == 0, removed.err
    assert removed.out.strip() == "user bo removed; 1 session(s) ended"
    assert sessions.resume(three.id) is None
    assert "bo" not in [
        u["name"] for u in run_here(["user", "list", "--json"], env).json()["users"]
    ]
    sessions.redis.close()


def test_dashboard_on_a_taken_port_fails_in_one_line(env: dict[str, str]) -> None:
    import socket

    from tests.clihelpers import run_process

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ran = run_process(["dashboard", "--port", str(port)], env, timeout=60)
    assert ran.code == 2, ran.err
    assert ran.err_lines[-1].startswith(f"error: cannot serve the dashboard on 127.0.0.1:{port}")
    assert "--port" in ran.err_lines[-1]
