"""Users of the web archive, their roles and grants, API tokens and sign-in lockouts.

Why this module exists: who may read which account is part of the archive (every
``syncer serve`` and ``syncer run`` process sharing a database must agree), and
every change to it is an audited event like a legal hold. This mixin of
:class:`~syncer.archive.store.ArchiveStore` stores what it is given: password
hashing (argon2id) and token generation happen in :mod:`syncer.web.auth`, so the
archive never sees a password or a token, only their hashes.

Public API: :class:`User`, :class:`LoginState` and the methods of :class:`StoreUsers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, delete, select, update

from syncer.archive import audit
from syncer.archive.models import api_tokens, login_attempts, user_accounts, users, utcnow
from syncer.archive.store_base import StoreCore
from syncer.errors import UsageError

__all__ = ["ROLES", "LoginState", "StoreUsers", "User"]

#: The roles, weakest first.
ROLES = ("reader", "auditor", "admin")


@dataclass(frozen=True, slots=True)
class User:
    """A user of the web archive.

    :ivar accounts: the accounts granted (what a reader may see; auditors and admins see all).
    :ivar password_hash: the argon2id PHC string, or None for a single-sign-on-only user.
    """

    name: str
    role: str
    accounts: tuple[str, ...]
    created_at: datetime
    password_hash: str | None = field(default=None, repr=False)

    @property
    def sees_all(self) -> bool:
        """Auditors and admins see every account."""
        return self.role in ("auditor", "admin")


@dataclass(frozen=True, slots=True)
class LoginState:
    """What a sign-in needs to know before checking a password.

    :ivar user: the user of that name, or None (the caller must not say so).
    :ivar locked_until: the end of a lockout in force, else None.
    """

    user: User | None
    locked_until: datetime | None


class StoreUsers(StoreCore):
    """Users, grants, tokens and lockouts (see the module docstring)."""

    def add_user(
        self,
        name: str,
        role: str,
        password_hash: str | None,
        accounts: tuple[str, ...] = (),
        *,
        actor: str | None,
    ) -> User:
        """Create a user (audited as ``user.added``).

        :raises UsageError: for an unknown role, or when the name is taken.
        """
        _check_role(role)
        now = utcnow()
        with self._write(f"adding user {name!r}") as conn:
            if self._user_id(conn, name) is not None:
                raise UsageError(
                    f"A user named {name!r} exists already.",
                    hint="Choose another name, or `syncer user remove` it first.",
                )
            user_id = conn.execute(
                users.insert()
                .values(
                    name=name,
                    role=role,
                    password_hash=password_hash,
                    created_at=now,
                    updated_at=now,
                )
                .returning(users.c.id)
            ).scalar_one()
            granted = tuple(sorted(set(accounts)))
            if granted:
                conn.execute(
                    user_accounts.insert(), [{"user_id": user_id, "account": a} for a in granted]
                )
            audit.append_event(
                conn,
                "user.added",
                actor=actor,
                subject=name,
                details={"role": role, "accounts": list(granted)},
                at=now,
            )
        return User(name, role, granted, now, password_hash)

    def users(self) -> list[User]:
        """Every user, by name."""
        with self._read("listing users") as conn:
            rows = conn.execute(select(users).order_by(users.c.name)).all()
            grants = self._grants(conn)
        return [_user(row, grants.get(row.id, ())) for row in rows]

    def user(self, name: str) -> User | None:
        """The user called ``name``, or None."""
        with self._read(f"reading user {name!r}") as conn:
            return self._load_user(conn, name)

    def remove_user(self, name: str, *, actor: str | None) -> None:
        """Delete a user with its grants and tokens (audited as ``user.removed``).

        :raises UsageError: when there is no such user (the message lists them).
        """
        with self._write(f"removing user {name!r}") as conn:
            user_id = self._existing_user_id(conn, name)
            conn.execute(delete(user_accounts).where(user_accounts.c.user_id == user_id))
            conn.execute(delete(api_tokens).where(api_tokens.c.user_id == user_id))
            conn.execute(delete(users).where(users.c.id == user_id))
            audit.append_event(conn, "user.removed", actor=actor, subject=name)

    def set_password(self, name: str, password_hash: str, *, actor: str | None) -> None:
        """Replace a user's password hash and lift any lockout (audited).

        :raises UsageError: when there is no such user.
        """
        with self._write(f"changing the password of {name!r}") as conn:
            user_id = self._existing_user_id(conn, name)
            conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(password_hash=password_hash, updated_at=utcnow())
            )
            conn.execute(delete(login_attempts).where(login_attempts.c.name == name))
            audit.append_event(conn, "user.password_changed", actor=actor, subject=name)

    def add_token(self, name: str, token_sha256: str, *, actor: str | None) -> None:
        """Record a new API token of a user by its SHA-256 (audited, the hash not shown).

        :raises UsageError: when there is no such user.
        """
        with self._write(f"adding an API token for {name!r}") as conn:
            user_id = self._existing_user_id(conn, name)
            conn.execute(
                api_tokens.insert().values(
                    user_id=user_id, token_sha256=token_sha256, created_at=utcnow()
                )
            )
            audit.append_event(conn, "user.token_added", actor=actor, subject=name)

    def user_by_token(self, token_sha256: str) -> User | None:
        """The user an API token (given by its SHA-256) belongs to, or None."""
        with self._read("checking an API token") as conn:
            name = conn.execute(
                select(users.c.name)
                .join(api_tokens, api_tokens.c.user_id == users.c.id)
                .where(api_tokens.c.token_sha256 == token_sha256)
            ).scalar()
            return None if name is None else self._load_user(conn, name)

    # ------------------------------------------------------------------ sign-in

    def login_state(self, name: str, now: datetime | None = None) -> LoginState:
        """The user (if any) and a lockout in force for ``name``."""
        now = now or utcnow()
        with self._read("reading a sign-in state") as conn:
            locked = conn.execute(
                select(login_attempts.c.locked_until).where(login_attempts.c.name == name)
            ).scalar()
            return LoginState(
                self._load_user(conn, name), locked if locked is not None and locked > now else None
            )

    def record_login(
        self,
        name: str,
        ok: bool,
        *,
        limit: int,
        lock_for: timedelta,
        details: dict[str, object],
        now: datetime | None = None,
    ) -> datetime | None:
        """Record a sign-in and its audit event (``web.sign_in`` or ``web.sign_in_failed``).

        A success clears the failures; the ``limit``-th failure in a row locks the
        name for ``lock_for``. Names that are no user count the same way.

        :returns: the end of the lockout this failure started, else None.
        """
        now = now or utcnow()
        locked: datetime | None = None
        with self._write("recording a sign-in") as conn:
            if ok:
                conn.execute(delete(login_attempts).where(login_attempts.c.name == name))
            else:
                locked = self._count_failure(conn, name, now, limit, lock_for)
            audit.append_event(
                conn,
                "web.sign_in" if ok else "web.sign_in_failed",
                actor=name,
                subject=name,
                details={**details, **({"locked_until": locked.isoformat()} if locked else {})},
                at=now,
            )
        return locked

    def _count_failure(
        self, conn: Connection, name: str, now: datetime, limit: int, lock_for: timedelta
    ) -> datetime | None:
        """Count one failure; the ``limit``-th starts a lockout. A failure during a lockout
        keeps it (and counts towards the next one)."""
        row = conn.execute(
            select(login_attempts.c.failures, login_attempts.c.locked_until).where(
                login_attempts.c.name == name
            )
        ).first()
        count = (row.failures if row is not None else 0) + 1
        current = row.locked_until if row is not None else None
        started = now + lock_for if count >= limit else None
        values = {
            "failures": 0 if started else count,
            "last_failure_at": now,
            "locked_until": started or (current if current and current > now else None),
        }
        if row is None:
            conn.execute(login_attempts.insert().values(name=name, **values))
        else:
            conn.execute(
                update(login_attempts).where(login_attempts.c.name == name).values(**values)
            )
        return started

    # ------------------------------------------------------------------ helpers

    def _user_id(self, conn: Connection, name: str) -> int | None:
        return conn.execute(select(users.c.id).where(users.c.name == name)).scalar()

    def _existing_user_id(self, conn: Connection, name: str) -> int:
        user_id = self._user_id(conn, name)
        if user_id is None:
            known = sorted(conn.execute(select(users.c.name)).scalars())
            raise UsageError(f"No user named {name!r}. Users: {', '.join(known) or 'none'}.")
        return int(user_id)

    def _load_user(self, conn: Connection, name: str) -> User | None:
        row = conn.execute(select(users).where(users.c.name == name)).first()
        if row is None:
            return None
        return _user(row, self._grants(conn, row.id).get(row.id, ()))

    @staticmethod
    def _grants(conn: Connection, user_id: int | None = None) -> dict[int, tuple[str, ...]]:
        query = select(user_accounts.c.user_id, user_accounts.c.account).order_by(
            user_accounts.c.account
        )
        if user_id is not None:
            query = query.where(user_accounts.c.user_id == user_id)
        found: dict[int, list[str]] = {}
        for uid, account in conn.execute(query):
            found.setdefault(int(uid), []).append(account)
        return {uid: tuple(names) for uid, names in found.items()}


def _user(row: Row[Any], accounts: tuple[str, ...]) -> User:
    return User(row.name, row.role, accounts, row.created_at, row.password_hash)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UsageError(f"Unknown role {role!r}; use one of {', '.join(ROLES)}.")
