"""What can go wrong with OAuth2 sign-in, as ``SyncerError`` subclasses.

Why a module of its own: the token code, the CLI and the protocol adapters all
need to tell "sign in again" (nothing but the user can fix it) from "the token
endpoint is down" (the next run will do). Messages name the account and never
contain a token or a client secret.

Public API: :class:`OAuthError`, :class:`LoginRequired`, :class:`OAuthUnavailable`.
"""

from __future__ import annotations

from typing import ClassVar

from syncer.errors import SyncerError


class OAuthError(SyncerError):
    """The authorization server refused a request, or a sign-in flow failed (exit 1)."""


class LoginRequired(OAuthError):
    """No usable refresh token: the user must run ``syncer auth login NAME`` again.

    Raised when no token was ever stored, when the refresh token was revoked or
    expired (``invalid_grant``), and when the server refuses even a freshly
    refreshed access token.
    """

    def __init__(self, owner: str, name: str, reason: str) -> None:
        super().__init__(
            f"{owner}: OAuth2 sign-in needed: {reason}.",
            hint=f"Run `syncer auth login {name}` to sign in again.",
        )
        self.name = name


class OAuthUnavailable(OAuthError):
    """The authorization server could not be reached or answered 5xx; try again later."""

    transient: ClassVar[bool] = True
