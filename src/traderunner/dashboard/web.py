"""The dashboard's Flask server: signed session cookies, the login wall, login and logout.

Sessions: a small Flask ``SessionInterface`` of our own on itsdangerous rather than
Flask-Session. Flask-Session's Redis interface keeps each session as one serialized value
(msgpack) under one key; we need the session as a Redis *hash* (``user``, ``created``,
``last_seen`` ..., readable and changeable field by field, as ``redis-cli HGETALL`` shows it),
a per-user index so logout and ``user remove`` end sessions at once, an expiry that slides
without rewriting the value, and JSON-or-text only. The hash and its index are in
``dashboard/sessions.py``; this interface only carries the id: the cookie ``traderunner_session``
holds the session id signed with itsdangerous (HMAC-SHA256 with the dashboard secret), HttpOnly,
SameSite=Lax, Secure when the request came over HTTPS. A cookie whose signature fails, or whose
session ended or expired, counts as no session and is deleted.

The wall (:func:`_guard`, before every request): ``/login``, ``/healthz`` and ``/assets/``
(the stylesheet of the login page) are open; every other GET without a session is redirected to
``/login?next=...``, and every other request without one (Dash's ``_dash-update-component``
callbacks, its layout and bundles) gets 401. With a session, a POST must come from our own
origin (when the browser says) and carry the session's CSRF token: Dash's renderer copies the
``_csrf_token`` cookie into ``X-CSRFToken`` on every callback; the logout form sends it as a
field. A missing durable Redis answers 503.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from flask import Flask, Request, Response, g, jsonify, redirect, request, session
from flask.sessions import SessionInterface, SessionMixin
from flask.typing import ResponseReturnValue
from itsdangerous import BadSignature, Signer
from werkzeug.middleware.proxy_fix import ProxyFix

from traderunner.errors import RedisError, StoreError

if TYPE_CHECKING:
    from collections.abc import Callable

    from traderunner.dashboard.accounts import Accounts
    from traderunner.dashboard.sessions import SessionInfo, SessionStore

log = logging.getLogger(__name__)

SESSION_COOKIE = "traderunner_session"
CSRF_COOKIE = "_csrf_token"  # the name Dash's renderer reads (Dash(csrf_token_name=...))
CSRF_HEADER = "X-CSRFToken"
PUBLIC_PATHS = frozenset({"/login", "/healthz"})
PUBLIC_PREFIXES = ("/assets/",)
_SALT = "traderunner.dashboard.session"


class DashboardSession(dict[str, Any], SessionMixin):
    """Flask's ``session`` for one request: ``user`` and ``admin`` when logged in."""

    def __init__(self, info: SessionInfo | None, *, stale_cookie: bool = False) -> None:
        super().__init__({"user": info.user, "admin": info.admin} if info else {})
        self.info = info
        self.stale_cookie = stale_cookie  # a cookie came that leads to no session
        self.started: SessionInfo | None = None  # set by a login in this request
        self.ended = False  # set by a logout in this request
        self.unavailable = ""  # the durable Redis failed while reading the session


class ServerSessionInterface(SessionInterface):
    """Sessions kept in the durable Redis; the cookie carries the signed id only."""

    def __init__(self, store: SessionStore, secret: str) -> None:
        self.store = store
        self.signer = Signer(secret, salt=_SALT, digest_method=hashlib.sha256)

    def open_session(self, app: Flask, request: Request) -> DashboardSession:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return DashboardSession(None)
        try:
            session_id = self.signer.unsign(raw).decode()
        except (BadSignature, UnicodeDecodeError):
            return DashboardSession(None, stale_cookie=True)
        try:
            info = self.store.resume(session_id)
        except RedisError as exc:
            found = DashboardSession(None)
            found.unavailable = str(exc)
            return found
        return DashboardSession(info, stale_cookie=info is None)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, DashboardSession):
            return
        secure = request.is_secure
        if session.started is not None:
            signed = self.signer.sign(session.started.id).decode()
            response.set_cookie(
                SESSION_COOKIE, signed, httponly=True, samesite="Lax", secure=secure, path="/"
            )
            # Read by Dash's renderer (so not HttpOnly) and echoed as X-CSRFToken.
            response.set_cookie(
                CSRF_COOKIE, session.started.csrf, samesite="Strict", secure=secure, path="/"
            )
        elif session.ended or session.stale_cookie:
            response.delete_cookie(SESSION_COOKIE, path="/", samesite="Lax", secure=secure)
            response.delete_cookie(CSRF_COOKIE, path="/", samesite="Strict", secure=secure)


def current_session() -> DashboardSession:
    """This request's session (always ours: the interface is installed by create_server)."""
    found = session._get_current_object()  # type: ignore[attr-defined]
    assert isinstance(found, DashboardSession)
    return found


def current_user() -> str:
    """The logged-in user of this request ('' when none: the wall lets no such request in).

    Pages that list jobs or results show this user's own, or everyone's when
    :func:`current_is_admin`.
    """
    return str(current_session().get("user", ""))


def current_is_admin() -> bool:
    """Whether this request's user is an administrator (as of the login)."""
    return bool(current_session().get("admin", False))


def create_server(
    *,
    accounts: Accounts,
    sessions: SessionStore,
    secret: str,
    proxy_hops: int = 0,
    health: Callable[[], dict[str, str]] | None = None,
) -> Flask:
    """The Flask app Dash mounts on, with sessions, the wall and the login routes."""
    server = Flask("traderunner.dashboard")
    server.secret_key = secret
    server.session_interface = ServerSessionInterface(sessions, secret)
    server.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
    )
    if proxy_hops:
        server.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            server.wsgi_app, x_for=proxy_hops, x_proto=proxy_hops, x_host=proxy_hops
        )
    server.before_request(_guard)
    server.after_request(_headers)

    @server.get("/healthz")
    def healthz() -> ResponseReturnValue:
        checks = health() if health is not None else {}
        ok = all(v == "ok" for v in checks.values())
        return jsonify({"status": "ok" if ok else "unavailable", **checks}), 200 if ok else 503

    @server.get("/login")
    def login_form() -> ResponseReturnValue:
        if current_user():
            return redirect(_safe_next(request.args.get("next")), code=303)
        return login_page(next_path=_safe_next(request.args.get("next"))), 200

    @server.post("/login")
    def login_submit() -> ResponseReturnValue:
        username = request.form.get("username", "")
        password = request.form.get("password", "")
        next_path = _safe_next(request.form.get("next"))
        address = request.remote_addr or ""
        agent = request.headers.get("User-Agent", "")
        try:
            result = accounts.authenticate(username, password, address=address, user_agent=agent)
        except (RedisError, StoreError) as exc:
            log.error("login failed: %s", exc)
            page = login_page(
                error="the dashboard cannot check logins right now (its Redis or store is "
                "down); try again shortly",
                username=username,
                next_path=next_path,
            )
            return page, 503, {}
        if result.outcome == "limited":
            wait = max(1, int(result.retry_after + 0.999))
            page = login_page(
                error=f"too many failed logins: try again in {_minutes(wait)}",
                username=username,
                next_path=next_path,
            )
            return page, 429, {"Retry-After": str(wait)}
        if not result.ok or result.user is None:
            page = login_page(
                error="wrong user name or password", username=username, next_path=next_path
            )
            return page, 401, {}
        found = current_session()
        if found.info is not None:  # a new login replaces this browser's old session
            sessions.end(found.info.id, user=found.info.user)
        found.started = sessions.create(result.user.name, admin=result.user.admin, address=address)
        return redirect(next_path, code=303)

    @server.post("/logout")
    def logout() -> ResponseReturnValue:
        found = current_session()
        if found.info is not None:
            sessions.end(found.info.id, user=found.info.user)
        found.ended = True
        return redirect("/login", code=303)

    return server


def _guard() -> ResponseReturnValue | None:
    path = request.path
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return None
    found = current_session()
    if found.info is None and path == "/logout":
        return redirect("/login", code=303)  # nothing to end: an expired session
    if found.unavailable:
        return _refuse(503, "the durable Redis is not reachable; try again shortly")
    if found.info is None:
        if request.method == "GET" and not path.startswith("/_"):
            target = request.full_path if request.query_string else path
            return redirect(f"/login?next={quote(target, safe='/')}", code=302)
        return _refuse(401, "login required: POST /login first")
    g.user = found.info.user
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        origin = request.headers.get("Origin")
        if origin and origin != request.host_url.rstrip("/"):
            return _refuse(403, "cross-origin request refused")
        token = request.headers.get(CSRF_HEADER) or request.form.get("csrf_token", "")
        if not hmac.compare_digest(str(token), found.info.csrf):
            return _refuse(403, "missing or wrong CSRF token: reload the page")
    return None


def _refuse(code: int, message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), code


def _headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _safe_next(raw: str | None) -> str:
    """Only a path on this site (no scheme, no host, no ``//``) may be the target."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or parts.path in PUBLIC_PATHS:
        return "/"
    return raw


def _minutes(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} s"
    return f"{(seconds + 59) // 60} min"


def login_page(*, error: str = "", username: str = "", next_path: str = "/") -> str:
    """The login form (plain HTML: it must work before any Dash bundle is allowed)."""
    message = f'<p class="login-error" role="alert">{html.escape(error)}</p>' if error else ""
    return _LOGIN_HTML.format(
        error=message,
        username=html.escape(username, quote=True),
        focus_name="" if username else "autofocus",
        focus_password="autofocus" if username else "",
        next=html.escape(next_path, quote=True),
    )


_LOGIN_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · traderunner</title>
<link rel="stylesheet" href="/assets/style.css">
</head>
<body class="login-body">
<main class="login-card">
  <div class="brand brand-large"><span class="brand-mark">◆</span> traderunner</div>
  <p class="muted">Backtests, sweeps, market data and the live trader.</p>
  {error}
  <form method="post" action="/login" id="login-form">
    <label for="username">User name</label>
    <input id="username" name="username" autocomplete="username" required {focus_name}
           value="{username}">
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="current-password"
           required {focus_password}>
    <input type="hidden" name="next" value="{next}">
    <button type="submit" id="login-submit">Log in</button>
  </form>
  <p class="muted small">No account? An administrator adds one with
  <code>traderunner user add NAME</code>.</p>
</main>
</body></html>
"""
