"""Token providers: what the protocol adapters call for an access token.

:class:`StoredTokens` keeps the tokens of one account in a token store and
refreshes the access token a minute before it expires, or at once when the
adapter says the server refused it (``refresh=True``). A refresh token the
server no longer accepts (``invalid_grant``: revoked, expired, password
changed) becomes :class:`~syncer.oauth.errors.LoginRequired`, whose message
tells the user to run ``syncer auth login NAME``.

:class:`CommandTokens` runs the user's own token helper (``token_command``)
instead, for people who already have one (oauth2ms, mutt_oauth2.py, ...).

Both are thread-safe: the daemon may connect one account's IMAP and SMTP at once.

Public API: :class:`StoredTokens`, :class:`CommandTokens`, :class:`TokenStatus`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from syncer.logs import register_secret
from syncer.oauth.endpoint import Client, GrantRefused, Tokens, request_tokens
from syncer.oauth.errors import LoginRequired, OAuthError
from syncer.oauth.store import TokenStore

log = structlog.get_logger(__name__)

#: Refresh this many seconds before the access token expires (clock skew, slow logins).
REFRESH_MARGIN = 60.0


@dataclass(frozen=True, slots=True)
class TokenStatus:
    """What ``syncer auth status`` shows about one entry: never a token."""

    present: bool
    refreshable: bool = False
    expires_at: float | None = None
    obtained_at: float | None = None
    scope: str | None = None


class StoredTokens:
    """A :class:`~syncer.oauth.sasl.TokenProvider` over a token store and a token endpoint.

    :param key: the entry in the store (``account:work``).
    :param owner: how messages name the entry (``Account 'work'``).
    :param name: what to pass to ``syncer auth login`` in the hint.
    """

    def __init__(
        self,
        client: Client,
        store: TokenStore,
        key: str,
        *,
        owner: str,
        name: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.store = store
        self.key = key
        self.owner = owner
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()

    def __call__(self, *, refresh: bool = False) -> str:
        with self._lock:
            tokens = self.store.load(self.key)
            if tokens is None:
                raise LoginRequired(
                    self.owner, self.name, f"no OAuth2 token is stored in {self.store.where}"
                )
            if not refresh and tokens.access_token and tokens.fresh(self._clock(), REFRESH_MARGIN):
                return tokens.access_token
            return self._refresh(tokens).access_token

    def _refresh(self, tokens: Tokens) -> Tokens:
        if not tokens.refresh_token:
            raise LoginRequired(
                self.owner, self.name, "the access token expired and no refresh token is stored"
            )
        try:
            fresh = request_tokens(
                self.client,
                {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token},
                clock=self._clock,
                keep_refresh=tokens.refresh_token,
            )
        except GrantRefused as exc:
            if exc.error == "invalid_grant":
                log.warning("oauth.refresh_refused", key=self.key, error=exc.error)
                raise LoginRequired(
                    self.owner,
                    self.name,
                    "the authorization server refused the refresh token (invalid_grant: "
                    "revoked or expired)",
                ) from None
            raise OAuthError(
                f"{self.owner}: refreshing the OAuth2 access token failed: {exc.message}",
                hint="Check client_id and the client secret of [oauth2]."
                if exc.error in ("invalid_client", "unauthorized_client")
                else None,
            ) from None
        self.store.save(self.key, fresh)
        log.info("oauth.token_refreshed", key=self.key, expires_at=fresh.expires_at)
        return fresh

    def login(self, tokens: Tokens) -> None:
        """Store what a sign-in flow obtained."""
        with self._lock:
            self.store.save(self.key, tokens)

    def logout(self) -> bool:
        """Forget the stored tokens; True when there were some."""
        with self._lock:
            return self.store.delete(self.key)

    def status(self) -> TokenStatus:
        tokens = self.store.load(self.key)
        if tokens is None:
            return TokenStatus(present=False)
        return TokenStatus(
            present=True,
            refreshable=tokens.refresh_token is not None,
            expires_at=tokens.expires_at,
            obtained_at=tokens.obtained_at or None,
            scope=tokens.scope,
        )


class CommandTokens:
    """A :class:`~syncer.oauth.sasl.TokenProvider` that runs ``token_command`` for each token.

    The command is expected to print a currently valid access token on its
    first line (refreshing it itself as needed); it runs again when the server
    refuses the token.
    """

    def __init__(self, argv: list[str], *, owner: str) -> None:
        self.argv = argv
        self.owner = owner

    def __call__(self, *, refresh: bool = False) -> str:
        from syncer.secrets import run_secret_command

        token = run_secret_command(self.argv, self.owner, key="token_command").strip()
        if not token:
            raise OAuthError(f"{self.owner}: token_command {self.argv[0]!r} printed nothing.")
        register_secret(token, rotating=True)
        return token
