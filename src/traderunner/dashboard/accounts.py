"""Dashboard accounts: user names, argon2 password hashes, and checked logins.

What the CLI (``traderunner user ...``) and the login form share:

* **Names** are 1-64 characters of lower-case letters, digits, ``_ . -``, starting with a
  letter or digit; input is stripped and lower-cased (``Ana`` logs in as ``ana``).
* **Passwords** are 8 to 1024 characters; only their argon2id hash (argon2-cffi's
  ``PasswordHasher`` with its RFC 9106 defaults) is stored. A hash made with weaker parameters
  is replaced at the next successful login.
* **Logins** (:meth:`Accounts.authenticate`): every attempt takes one unit of its client
  address's window (``dashboard_login_address_limit`` attempts per ``dashboard_login_window``
  seconds) and one of its user name's (``dashboard_login_user_limit``); an attempt either
  window refuses is turned away before the password is checked (outcome ``limited``, with a
  retry-after). A correct password clears the name's window, so what the name's window counts
  is failed logins; the address's window keeps successful ones too (clearing it would let one
  valid account reset its address's count between guesses), hence its larger limit. The
  units are taken before the password is checked, so parallel guesses count too. The windows
  are the project's cluster-wide limiter (``ratelimit/``) on the durable Redis, so every
  dashboard process shares them. An unknown name costs the same argon2 verification as a
  known one, so timing does not tell which names exist. Every attempt is recorded in the
  store (``logins``).
* Changing a password and removing a user end that user's sessions at once.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from traderunner.errors import UserInputError
from traderunner.ratelimit import Quota, RateLimiter

if TYPE_CHECKING:
    from traderunner.config import Settings
    from traderunner.dashboard.sessions import SessionStore
    from traderunner.store import Store
    from traderunner.store.users import User

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
LOGIN_USER_LIMITER = "login-user"
LOGIN_ADDRESS_LIMITER = "login-address"
_SUBJECT_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")


def normalize_name(raw: str) -> str:
    """The stored form of a user name; UserInputError saying what a name may be."""
    name = (raw or "").strip().lower()
    if not NAME_PATTERN.match(name):
        raise UserInputError(
            f"user name {raw!r} is not valid: use 1-64 lower-case letters, digits, '_', '.' or "
            "'-', starting with a letter or digit"
        )
    return name


def check_password(password: str) -> None:
    """UserInputError unless ``password`` is 8-1024 characters."""
    if len(password) < MIN_PASSWORD:
        raise UserInputError(
            f"the password is too short ({len(password)} characters): use at least {MIN_PASSWORD}"
        )
    if len(password) > MAX_PASSWORD:
        raise UserInputError(f"the password is too long: use at most {MAX_PASSWORD} characters")


def address_subject(address: str) -> str:
    """A client address as a limiter subject (anything unusual becomes ``_``)."""
    return _SUBJECT_UNSAFE.sub("_", address or "unknown")[:128] or "unknown"


@dataclass(frozen=True, slots=True)
class LoginResult:
    """What one login attempt came to: ``outcome`` ``ok`` (then ``user`` is set),
    ``bad_password``, ``unknown_user`` or ``limited`` (then ``retry_after`` seconds)."""

    outcome: str
    user: User | None = None
    retry_after: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """The two failed-login windows (per user name, per client address)."""

    per_user: RateLimiter
    per_address: RateLimiter

    @classmethod
    def from_settings(cls, settings: Settings, durable_url: str) -> LoginLimits:
        window = settings.dashboard_login_window
        prefix = settings.redis_prefix
        return cls(
            RateLimiter(
                durable_url,
                name=LOGIN_USER_LIMITER,
                quotas=[Quota(settings.dashboard_login_user_limit, window, "failures")],
                prefix=prefix,
            ),
            RateLimiter(
                durable_url,
                name=LOGIN_ADDRESS_LIMITER,
                quotas=[Quota(settings.dashboard_login_address_limit, window, "attempts")],
                prefix=prefix,
            ),
        )

    def close(self) -> None:
        self.per_user.close()
        self.per_address.close()


class Accounts:
    """Users, passwords and logins over a store, the session store and the login limits.

    ``sessions`` and ``limits`` may be None where they are not needed (``user add`` and
    ``user list`` touch only the store).
    """

    def __init__(
        self,
        store: Store,
        *,
        sessions: SessionStore | None = None,
        limits: LoginLimits | None = None,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.limits = limits
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None

    # -- managing users ---------------------------------------------------------------------

    def add(self, raw_name: str, password: str, *, admin: bool = False) -> User:
        name = normalize_name(raw_name)
        check_password(password)
        user = self.store.users.add(name, self.hasher.hash(password), admin=admin)
        if user is None:
            raise UserInputError(
                f"user {name!r} exists already: pick another name, or change the password "
                f"with 'traderunner user passwd {name}'"
            )
        return user

    def passwd(self, raw_name: str, password: str) -> int:
        """Set a new password; ends the user's sessions (returns how many) and clears the
        user's failed-login window."""
        name = normalize_name(raw_name)
        check_password(password)
        self._require(name)
        ended = self._end_sessions(name)
        self.store.users.set_password(name, self.hasher.hash(password))
        if self.limits is not None:
            self.limits.per_user.reset(subject=name)
        return ended

    def remove(self, raw_name: str) -> int:
        """Remove the user and end their sessions at once (returns how many were live).

        Their jobs and results stay (owned by the name); their login records stay.
        """
        name = normalize_name(raw_name)
        self._require(name)
        ended = self._end_sessions(name)
        self.store.users.remove(name)
        # Again after the row is gone: a login that raced the removal has no session left.
        return ended + self._end_sessions(name)

    def list(self) -> list[User]:
        return self.store.users.list()

    def _require(self, name: str) -> None:
        if self.store.users.get(name) is None:
            raise UserInputError(f"no user {name!r}: see 'traderunner user list'")

    def _end_sessions(self, name: str) -> int:
        if self.sessions is None:
            raise RuntimeError("Accounts built without a session store cannot end sessions")
        return self.sessions.end_user(name)

    # -- logging in -------------------------------------------------------------------------

    def authenticate(
        self, raw_name: str, password: str, *, address: str, user_agent: str = ""
    ) -> LoginResult:
        """Check one login attempt under the failed-login limits and record it."""
        if self.limits is None:
            raise RuntimeError("Accounts built without login limits cannot check logins")
        given = (raw_name or "").strip().lower()[:64]
        name = given if NAME_PATTERN.match(given) else None
        subject = address_subject(address)
        result = self._check(name, password, subject)
        self.store.users.record_login(
            given, address=address, outcome=result.outcome, user_agent=user_agent
        )
        return result

    def _check(self, name: str | None, password: str, address: str) -> LoginResult:
        assert self.limits is not None
        if not self.limits.per_address.try_acquire(subject=address):
            return LoginResult(
                "limited", retry_after=_retry_after(self.limits.per_address, address)
            )
        if name is not None and not self.limits.per_user.try_acquire(subject=name):
            return LoginResult("limited", retry_after=_retry_after(self.limits.per_user, name))
        stored = self.store.users.password_hash(name) if name is not None else None
        if stored is None or len(password) > MAX_PASSWORD:
            self._verify(self._dummy(), password)  # same cost as a real check
            return LoginResult("unknown_user" if stored is None else "bad_password")
        if not self._verify(stored, password):
            return LoginResult("bad_password")
        assert name is not None
        self.limits.per_user.reset(subject=name)
        if self.hasher.check_needs_rehash(stored):
            self.store.users.rehash(name, stored, self.hasher.hash(password))
        return LoginResult("ok", user=self.store.users.get(name))

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return bool(self.hasher.verify(stored, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash


def _retry_after(limiter: RateLimiter, subject: str) -> float:
    return max((u.reset_in_s for u in limiter.usage(subject=subject)), default=0.0)
