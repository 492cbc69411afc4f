"""Passwords, API tokens and the sign-in decision of the web archive.

Why this module exists: the archive stores only hashes (:mod:`syncer.archive.store_users`);
the hashing, the token format and the rules of signing in live here, shared by the
pages, the API and ``syncer user``.

* Passwords: argon2id (argon2-cffi's defaults, RFC 9106's second recommended
  set), as PHC strings.
* API tokens: ``syn_`` and 43 URL-safe characters (256 random bits), stored as
  their SHA-256: with that much entropy a slow hash adds nothing.
* Sign-in: a name that is locked, unknown or has a wrong password gets the same
  answer after the same work (an argon2 verification against a dummy hash for
  unknown names), so the answer never tells whether a user exists. The
  :data:`MAX_FAILURES`-th failure in a row locks the name for :data:`LOCK_FOR`,
  whether or not it is a user.

Public API: :func:`hash_password`, :func:`new_token`, :func:`token_digest`,
:func:`sign_in`, :class:`SignIn`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.archive.store_users import User

__all__ = [
    "LOCK_FOR",
    "MAX_FAILURES",
    "SignIn",
    "hash_password",
    "new_token",
    "sign_in",
    "token_digest",
]

MAX_FAILURES = 10
LOCK_FOR = timedelta(minutes=15)
_HASHER = PasswordHasher()
#: Verified against when the name is no user, so an unknown name costs the same time.
_DUMMY = _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """The argon2id PHC string of ``password``."""
    return _HASHER.hash(password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """A new API token (shown once; store :func:`token_digest` of it)."""
    return "syn_" + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the archive keeps of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class SignIn:
    """The outcome of :func:`sign_in`: the user, or None and a message safe to show."""

    user: User | None
    message: str = ""


#: The one answer for every failure: it names no reason that depends on the user existing.
FAILED = "Sign-in failed: wrong name or password, or too many attempts. Try again later."


def sign_in(store: ArchiveStore, name: str, password: str, *, client: str | None) -> SignIn:
    """Check a name and password, record the attempt (audited) and apply the lockout."""
    name = name.strip()[:200]
    state = store.login_state(name)
    ok = _verify(state.user.password_hash if state.user else None, password)
    details: dict[str, object] = {"client": client}
    if state.locked_until is not None:
        details["refused"] = "locked"
        ok = False
    store.record_login(name, ok, limit=MAX_FAILURES, lock_for=LOCK_FOR, details=details)
    if ok and state.user is not None:
        return SignIn(state.user)
    return SignIn(None, FAILED)
