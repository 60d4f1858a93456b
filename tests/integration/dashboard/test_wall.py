"""The login wall, sessions and login limits of the real app (Flask test client, real Valkey)."""

from __future__ import annotations

import json
import time
from typing import Any

from flask.testing import FlaskClient

from tests.integration.dashboard.conftest import PASSWORD, Dash, csrf_of, login
from traderunner.dashboard.web import SESSION_COOKIE


def _session_id(dash: Dash, client: FlaskClient) -> str:
    cookie = client.get_cookie(SESSION_COOKIE)
    assert cookie is not None
    return str(dash.app.server.session_interface.signer.unsign(cookie.value).decode())


def _router_call(client: FlaskClient, path: str = "/system", **headers: str) -> Any:
    deps = client.get("/_dash-dependencies").get_json()
    route = next(d for d in deps if d["inputs"] == [{"id": "url", "property": "pathname"}])
    outputs = [
        {"id": part.split(".")[0], "property": part.split(".")[1]}
        for part in route["output"].strip(".").split("...")
    ]
    body = {
        "output": route["output"],
        "outputs": outputs,
        "inputs": [{"id": "url", "property": "pathname", "value": path}],
        "changedPropIds": ["url.pathname"],
        "state": [],
    }
    return client.post(
        "/_dash-update-component",
        data=json.dumps(body),
        headers={"Content-Type": "application/json", **headers},
    )


def test_health_is_open_and_says_what_answers(dash: Dash) -> None:
    reply = dash.client().get("/healthz")
    assert reply.status_code == 200
    assert reply.get_json() == {"status": "ok", "redis": "ok", "store": "ok"}


def test_pages_without_a_session_go_to_the_login_page(dash: Dash) -> None:
    client = dash.client()
    for path in ("/", "/system", "/data", "/no-such-page"):
        reply = client.get(path)
        assert reply.status_code == 302, path
        assert reply.headers["Location"] == f"/login?next={path}"
    page = client.get("/login?next=/data")
    assert page.status_code == 200
    assert b'name="username"' in page.data and b'value="/data"' in page.data


def test_dash_endpoints_without_a_session_are_refused(dash: Dash) -> None:
    client = dash.client()
    assert client.post("/_dash-update-component", json={}).status_code == 401
    assert client.get("/_dash-layout").status_code == 401
    assert client.get("/_dash-dependencies").status_code == 401
    assert client.post("/logout").status_code == 303  # nothing to end: back to the login


def test_login_sets_a_signed_http_only_cookie_and_a_session_hash(dash: Dash) -> None:
    client = dash.client()
    reply = login(client, "ANA ", next="/data")  # names are stripped and lower-cased
    assert reply.status_code == 303 and reply.headers["Location"] == "/data"
    set_cookie = next(
        h for h in reply.headers.getlist("Set-Cookie") if h.startswith(SESSION_COOKIE)
    )
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    assert "Secure" not in set_cookie  # plain HTTP here; see the HTTPS test
    session_id = _session_id(dash, client)
    key = dash.ctx.redis.keys.session(session_id)
    fields = dash.ctx.redis.durable.hgetall(key)
    assert fields["user"] == "ana" and fields["admin"] == "1"
    assert {"created", "last_seen", "csrf"} <= set(fields)
    assert 3590 <= dash.ctx.redis.durable.ttl(key) <= 3600
    assert session_id in dash.ctx.redis.durable.smembers(dash.ctx.redis.keys.user_sessions("ana"))
    assert client.get("/data").status_code == 200
    # A second login is a new session (a session id is never reused); the old one ends.
    login(client)
    assert _session_id(dash, client) != session_id
    assert not dash.ctx.redis.durable.exists(key)


def test_cookie_is_secure_over_https(dash: Dash) -> None:
    reply = dash.client().post(
        "/login", data={"username": "ana", "password": PASSWORD}, base_url="https://localhost"
    )
    cookies = reply.headers.getlist("Set-Cookie")
    assert all("Secure" in c for c in cookies), cookies


def test_expiry_slides_with_each_request(dash: Dash) -> None:
    client = dash.client()
    login(client)
    key = dash.ctx.redis.keys.session(_session_id(dash, client))
    dash.ctx.redis.durable.expire(key, 100)
    assert client.get("/system").status_code == 200
    assert dash.ctx.redis.durable.ttl(key) > 3500
    dash.ctx.redis.durable.pexpire(key, 50)  # a session left idle until its TTL ran out
    time.sleep(0.2)
    reply = client.get("/system")
    assert reply.status_code == 302 and reply.headers["Location"].startswith("/login")
    assert client.get_cookie(SESSION_COOKIE) is None  # the dead cookie is deleted


def test_wrong_or_unknown_logins_are_refused_and_recorded(dash: Dash) -> None:
    client = dash.client(address="192.0.2.10")
    bad = login(client, "bob", "not the password")
    unknown = login(client, "nobody", PASSWORD)
    assert bad.status_code == unknown.status_code == 401
    assert b"wrong user name or password" in bad.data and b"wrong user name or password" in (
        unknown.data
    )
    assert client.get_cookie(SESSION_COOKIE) is None
    outcomes = [
        (r.username, r.outcome)
        for r in dash.ctx.store.users.logins(limit=10)
        if r.address == "192.0.2.10"
    ]
    assert outcomes == [("nobody", "unknown_user"), ("bob", "bad_password")]
    assert login(client, "bob").status_code == 303  # the failures above were under the limit


def test_failed_logins_per_user_are_limited(dash: Dash) -> None:
    dash.ctx.accounts.add("carol", PASSWORD)
    # From changing addresses, so only the per-user window can refuse.
    for i in range(3):
        assert login(dash.client(address=f"198.51.100.{i}"), "carol", "wrong").status_code == 401
    refused = login(dash.client(address="198.51.100.9"), "carol", PASSWORD)
    assert refused.status_code == 429
    assert b"too many failed logins" in refused.data
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Another user is not affected, and the refusal is recorded.
    assert login(dash.client(address="198.51.100.9"), "bob").status_code == 303
    assert dash.ctx.store.users.logins(username="carol", limit=1)[0].outcome == "limited"
    # An administrator's new password lifts the lock.
    dash.ctx.accounts.passwd("carol", "a new password 2")
    assert (
        login(dash.client(address="198.51.100.9"), "carol", "a new password 2").status_code == 303
    )


def test_a_correct_login_clears_the_users_failures(dash: Dash) -> None:
    dash.ctx.accounts.add("dave", PASSWORD)
    for round_ in range(2):
        for i in range(2):
            address = f"203.0.113.{round_ * 10 + i}"
            assert login(dash.client(address=address), "dave", "wrong").status_code == 401
        assert login(dash.client(address="203.0.113.99"), "dave").status_code == 303


def test_attempts_per_client_address_are_limited(dash: Dash) -> None:
    client = dash.client(address="192.0.2.200")
    codes = [login(client, f"guess{i}", "whatever").status_code for i in range(8)]
    assert codes == [401] * 8
    # The ninth attempt from that address is refused, even with a right password.
    assert login(client, "ana").status_code == 429
    assert login(dash.client(address="192.0.2.201"), "ana").status_code == 303


def test_callbacks_need_the_csrf_token_and_our_origin(dash: Dash) -> None:
    client = dash.client()
    login(client)
    assert _router_call(client).status_code == 403  # no X-CSRFToken
    token = csrf_of(client)
    assert _router_call(client, **{"X-CSRFToken": "x" + token}).status_code == 403
    other = _router_call(client, **{"X-CSRFToken": token, "Origin": "http://evil.example"})
    assert other.status_code == 403
    same = _router_call(client, **{"X-CSRFToken": token, "Origin": "http://localhost"})
    assert same.status_code == 200
    assert "page-system" in same.get_data(as_text=True)


def test_logout_ends_the_session_at_once(dash: Dash) -> None:
    client = dash.client()
    login(client)
    session_id = _session_id(dash, client)
    key = dash.ctx.redis.keys.session(session_id)
    old_cookie = client.get_cookie(SESSION_COOKIE)
    assert old_cookie is not None
    assert client.post("/logout").status_code == 403  # without the CSRF token: refused
    assert dash.ctx.redis.durable.exists(key)
    reply = client.post("/logout", data={"csrf_token": csrf_of(client)})
    assert reply.status_code == 303 and reply.headers["Location"] == "/login"
    assert not dash.ctx.redis.durable.exists(key)
    assert client.get_cookie(SESSION_COOKIE) is None
    # The old cookie, replayed, leads nowhere.
    replay = dash.client()
    replay.set_cookie(SESSION_COOKIE, old_cookie.value)
    assert replay.get("/system").status_code == 302
    assert replay.post("/_dash-update-component", json={}).status_code == 401


def test_a_tampered_cookie_is_refused_and_deleted(dash: Dash) -> None:
    client = dash.client()
    login(client)
    cookie = client.get_cookie(SESSION_COOKIE)
    assert cookie is not None
    session_id, _, signature = cookie.value.rpartition(".")
    for forged in (
        session_id + "." + signature[:-2] + ("AA" if not signature.endswith("AA") else "BB"),
        "x" + cookie.value,
        session_id,  # the id alone, unsigned
    ):
        fresh = dash.client()
        fresh.set_cookie(SESSION_COOKIE, forged)
        reply = fresh.get("/system")
        assert reply.status_code == 302 and reply.headers["Location"].startswith("/login")
        assert any(h.startswith(f"{SESSION_COOKIE}=;") for h in reply.headers.getlist("Set-Cookie"))
        assert fresh.post("/_dash-update-component", json={}).status_code == 401


def test_removing_a_user_ends_their_sessions_at_once(dash: Dash) -> None:
    dash.ctx.accounts.add("erin", PASSWORD)
    first, second = dash.client(), dash.client()
    login(first, "erin")
    login(second, "erin")
    assert first.get("/system").status_code == 200
    assert dash.ctx.accounts.remove("erin") == 2
    assert first.get("/system").status_code == 302
    assert second.get("/data").status_code == 302
    assert login(dash.client(), "erin").status_code == 401


def test_login_redirects_only_to_this_site(dash: Dash) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "/login"):
        reply = login(dash.client(), next=target)
        assert reply.status_code == 303 and reply.headers["Location"] == "/", target
