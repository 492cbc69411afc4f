"""The one wording of an OAuth2 sign-in failure, for every protocol adapter.

Why a module: IMAP and POP3 (and any later adapter) map the same two SASL
outcomes -- the token refused even after a refresh, no bearer mechanism
offered -- to the same errors and hints; only the protocol's name differs.
"""

from __future__ import annotations

from syncer.errors import SourceAuthError, SourceError
from syncer.oauth.sasl import BearerRefused, NoMechanism


def oauth_error(
    exc: BearerRefused | NoMechanism,
    *,
    protocol: str,
    label: str,
    server: str,
    account: str | None,
) -> SourceError:
    """The error to raise (``from exc``) for a failed OAuth2 sign-in."""
    if isinstance(exc, BearerRefused):
        return SourceAuthError(
            f"Account {label!r}: {protocol} server {server} refused the OAuth2 access token "
            f"({exc.mechanism}), also a freshly refreshed one.",
            account=account,
            hint=f"Run `syncer auth login {label}` to sign in again (and check the "
            f"username and the scopes). The server said: {exc.detail}",
        )
    return SourceError(
        f"Account {label!r}: {protocol} server {server}: {exc}.",
        account=account,
        hint='Set mechanism = "xoauth2" or "oauthbearer" in [accounts.oauth2] if the '
        "server supports one without announcing it.",
    )
