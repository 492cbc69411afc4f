"""From an ``[accounts.oauth2]`` table to a token provider: the one place config meets OAuth2.

Why here and not in the adapters: the protocol adapters take a token
provider (a callable) and nothing else, and the rest of :mod:`syncer.oauth`
takes plain values; this module reads :class:`~syncer.config.oauth.OAuth2Config`,
resolves the client secret lazily (only when a token request needs it) and
picks the token store.

Public API: :func:`entry_key`, :func:`read_client_secret`, :func:`make_client`,
:func:`make_store`, :func:`token_provider`, :func:`stored_tokens`.
"""

from __future__ import annotations

from pathlib import Path

from syncer.config.oauth import TOKEN_FILE_NAME, OAuth2Config
from syncer.errors import RelayError, RelayUnavailable, SourceUnavailable
from syncer.oauth.endpoint import Client
from syncer.oauth.errors import OAuthError, OAuthUnavailable
from syncer.oauth.sasl import TokenProvider
from syncer.oauth.session import CommandTokens, StoredTokens
from syncer.oauth.store import FileTokenStore, KeyringTokenStore, TokenStore


def entry_key(kind: str, name: str) -> str:
    """The token store key: ``account:work`` or ``smtp:relay`` (names of both may repeat)."""
    return f"{kind}:{name}"


def read_client_secret(oauth2: OAuth2Config, *, owner: str) -> str | None:
    """The client secret from its env/file/command source; None for a public client.

    :raises ConfigError: when the source gives nothing usable.
    """
    if not oauth2.has_client_secret:
        return None
    from syncer.secrets import read_secret

    return read_secret(
        oauth2.client_secret_env,
        oauth2.client_secret_file,
        oauth2.client_secret_command,
        owner=owner,
        kind="client_secret",
    )


def make_client(oauth2: OAuth2Config, protocol: str, *, owner: str) -> Client:
    """The :class:`Client` for ``oauth2`` signing in for ``protocol`` (imap, pop3, smtp)."""
    if oauth2.client_id is None or oauth2.token_endpoint is None:
        raise ValueError("make_client() needs syncer's own sign-in (not token_command)")

    def client_secret() -> str | None:
        return read_client_secret(oauth2, owner=owner)

    defaults = oauth2.defaults
    return Client(
        client_id=oauth2.client_id,
        token_url=oauth2.token_endpoint,
        scopes=oauth2.scopes_for(protocol),
        client_secret=client_secret,
        authorize_url=oauth2.authorize_endpoint,
        device_authorization_url=oauth2.device_endpoint,
        authorize_params=dict(defaults.authorize_params),
        redirect_host=defaults.redirect_host,
        redirect_port=oauth2.redirect_port,
    )


def make_store(oauth2: OAuth2Config) -> TokenStore:
    if oauth2.token_store == "keyring":
        return KeyringTokenStore()
    return FileTokenStore(oauth2.token_file or Path(TOKEN_FILE_NAME).resolve())


def token_provider(oauth2: OAuth2Config, *, kind: str, name: str, protocol: str) -> TokenProvider:
    """What the adapter of account (``kind="account"``) or SMTP server ``name`` calls.

    Its errors are those its callers already handle: an unreachable token endpoint is
    ``SourceUnavailable`` for an account (the sync retries it) and ``RelayUnavailable``
    for an SMTP server (the outbox defers); for SMTP any other OAuth2 failure, such as
    "sign in again", is a ``RelayError`` that keeps the message and hint.
    """
    owner = f"{'Account' if kind == 'account' else 'SMTP server'} {name!r}"
    tokens: TokenProvider
    if oauth2.token_command is not None:
        tokens = CommandTokens(oauth2.token_command, owner=owner)
    else:
        tokens = stored_tokens(oauth2, kind=kind, name=name, protocol=protocol)
    return _MappedErrors(tokens, kind, name)


class _MappedErrors:
    """A token provider whose OAuth2 errors are translated for the adapter's callers."""

    def __init__(self, tokens: TokenProvider, kind: str, name: str) -> None:
        self._tokens = tokens
        self._kind = kind
        self._name = name

    def __call__(self, *, refresh: bool = False) -> str:
        try:
            return self._tokens(refresh=refresh)
        except OAuthUnavailable as exc:
            if self._kind == "account":
                raise SourceUnavailable(exc.message, account=self._name, hint=exc.hint) from exc
            raise RelayUnavailable(exc.message, hint=exc.hint) from exc
        except OAuthError as exc:
            if self._kind == "account":
                raise
            raise RelayError(exc.message, hint=exc.hint) from exc


def stored_tokens(oauth2: OAuth2Config, *, kind: str, name: str, protocol: str) -> StoredTokens:
    owner = f"{'Account' if kind == 'account' else 'SMTP server'} {name!r}"
    return StoredTokens(
        make_client(oauth2, protocol, owner=owner),
        make_store(oauth2),
        entry_key(kind, name),
        owner=owner,
        name=name if kind == "account" else f"smtp:{name}",
    )
