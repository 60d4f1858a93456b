"""Dashboard users and the record of login attempts: ``store.users``.

The store holds password *hashes* only (argon2, made by ``dashboard/accounts.py``); it never
sees a password. Names are the key and are compared as stored (the accounts layer lower-cases
them). The login record keeps every attempt, successful or not, also for names that are no
user's, and survives the removal of a user.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from traderunner.store.schema import logins as logins_table
from traderunner.store.schema import users as users_table

if TYPE_CHECKING:
    from traderunner.store.store import Store

# Longest user agent kept (the column's width); longer ones are cut, not refused.
USER_AGENT_LENGTH = 256


@dataclass(frozen=True, slots=True)
class User:
    """One dashboard user, without the password hash."""

    name: str
    admin: bool
    created_at: datetime
    password_changed_at: datetime
    last_login_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "admin": self.admin,
            "created_at": self.created_at.isoformat(),
            "password_changed_at": self.password_changed_at.isoformat(),
            "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None,
        }


@dataclass(frozen=True, slots=True)
class LoginRecord:
    """One login attempt: ``outcome`` is ``ok``, ``bad_password``, ``unknown_user`` or
    ``limited`` (refused by the failed-login limit before the password was checked)."""

    at: datetime
    username: str
    address: str
    outcome: str
    user_agent: str


class UserRepository:
    """``store.users``: add, read, change and remove users; record and read login attempts."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, name: str, password_hash: str, *, admin: bool = False) -> User | None:
        """Insert a user; None (and nothing written) when the name is taken."""
        now = datetime.now(UTC)
        with self._store.transaction(f"add the user {name!r}") as conn:
            exists = conn.execute(_GET_ONE, {"name": name}).first()
            if exists is not None:
                return None
            conn.execute(
                users_table.insert().values(
                    name=name,
                    password_hash=password_hash,
                    admin=admin,
                    created_at=now,
                    password_changed_at=now,
                    last_login_at=None,
                )
            )
        return User(name, admin, now, now, None)

    def get(self, name: str) -> User | None:
        with self._store.transaction(f"read the user {name!r}") as conn:
            row = conn.execute(_GET_ONE, {"name": name}).first()
        return None if row is None else _user(row)

    def password_hash(self, name: str) -> str | None:
        """The stored hash of ``name`` (None for no such user)."""
        with self._store.transaction(f"read the user {name!r}") as conn:
            value = conn.execute(_GET_HASH, {"name": name}).scalar_one_or_none()
        return None if value is None else str(value)

    def list(self) -> list[User]:
        """Every user, by name."""
        with self._store.transaction("list the users") as conn:
            rows = conn.execute(sa.select(users_table).order_by(users_table.c.name)).all()
        return [_user(row) for row in rows]

    def set_password(self, name: str, password_hash: str) -> bool:
        """Replace the hash; False when there is no such user."""
        with self._store.transaction(f"change the password of {name!r}") as conn:
            done = conn.execute(
                users_table.update()
                .where(users_table.c.name == name)
                .values(password_hash=password_hash, password_changed_at=datetime.now(UTC))
            )
        return bool(done.rowcount)

    def rehash(self, name: str, old_hash: str, new_hash: str) -> None:
        """Store a stronger hash of the same password, unless the password changed meanwhile."""
        with self._store.transaction(f"update the password hash of {name!r}") as conn:
            conn.execute(
                users_table.update()
                .where((users_table.c.name == name) & (users_table.c.password_hash == old_hash))
                .values(password_hash=new_hash)
            )

    def remove(self, name: str) -> bool:
        """Delete the user; False when there is none. Their login records stay."""
        with self._store.transaction(f"remove the user {name!r}") as conn:
            done = conn.execute(users_table.delete().where(users_table.c.name == name))
        return bool(done.rowcount)

    def record_login(
        self,
        username: str,
        *,
        address: str,
        outcome: str,
        user_agent: str = "",
        at: datetime | None = None,
    ) -> None:
        """Append one attempt; a successful one also sets the user's ``last_login_at``."""
        when = at or datetime.now(UTC)
        with self._store.transaction("record a login attempt") as conn:
            conn.execute(
                logins_table.insert().values(
                    at=when,
                    username=username[:64],
                    address=address[:64],
                    outcome=outcome,
                    user_agent=user_agent[:USER_AGENT_LENGTH],
                )
            )
            if outcome == "ok":
                conn.execute(
                    users_table.update()
                    .where(users_table.c.name == username)
                    .values(last_login_at=when)
                )

    def logins(
        self,
        *,
        username: str | None = None,
        since: datetime | None = None,
        outcomes: Sequence[str] | None = None,
        limit: int | None = 100,
    ) -> builtins.list[LoginRecord]:
        """Login attempts, newest first, filtered by name, time and outcome."""
        stmt = sa.select(logins_table).order_by(logins_table.c.at.desc(), logins_table.c.id.desc())
        if username is not None:
            stmt = stmt.where(logins_table.c.username == username)
        if since is not None:
            stmt = stmt.where(logins_table.c.at >= since)
        if outcomes:
            stmt = stmt.where(logins_table.c.outcome.in_(list(outcomes)))
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._store.transaction("read the login record") as conn:
            rows = conn.execute(stmt).all()
        return [
            LoginRecord(_aware(row.at), row.username, row.address, row.outcome, row.user_agent)
            for row in rows
        ]

    def login_counts(self, since: datetime) -> dict[str, int]:
        """Attempts since ``since`` by outcome (for the System page)."""
        stmt = (
            sa.select(logins_table.c.outcome, sa.func.count())
            .where(logins_table.c.at >= since)
            .group_by(logins_table.c.outcome)
        )
        with self._store.transaction("count login attempts") as conn:
            return {str(outcome): int(n) for outcome, n in conn.execute(stmt).all()}


_GET_ONE = sa.select(users_table).where(users_table.c.name == sa.bindparam("name"))
_GET_HASH = sa.select(users_table.c.password_hash).where(users_table.c.name == sa.bindparam("name"))


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _user(row: sa.Row[Any]) -> User:
    return User(
        name=row.name,
        admin=bool(row.admin),
        created_at=_aware(row.created_at),
        password_changed_at=_aware(row.password_changed_at),
        last_login_at=None if row.last_login_at is None else _aware(row.last_login_at),
    )
