"""The ``[accounts.oauth2]`` (and ``[smtp.oauth2]``) configuration table.

Why its own module: OAuth2 adds a dozen keys and their own rules -- the
client secret comes from exactly one of three places and is never inline,
a ``generic`` provider must name its endpoints, ``token_command`` replaces
syncer's own sign-in altogether -- and they are the same for an IMAP or POP3
account and an SMTP server. The table is used by accounts with
``auth = "oauth2"`` (see :class:`syncer.config.schema.AccountConfig`).

Public API: :class:`OAuth2Config`, :func:`anchor_token_file`, :data:`TOKEN_FILE_NAME`.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from syncer.config.base import Strict
from syncer.oauth.providers import PROVIDERS, Provider

#: The default token file, beside the archive (SQLite) or the configuration file.
TOKEN_FILE_NAME = "oauth2-tokens.json"

_CLIENT_SECRET_KEYS = ("client_secret_env", "client_secret_file", "client_secret_command")
#: Keys of syncer's own sign-in, which token_command replaces.
_SIGN_IN_KEYS = (
    "client_id",
    *_CLIENT_SECRET_KEYS,
    "scopes",
    "token_url",
    "authorize_url",
    "device_authorization_url",
    "flow",
    "redirect_port",
    "token_store",
    "token_file",
)
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class OAuth2Config(Strict):
    """How one account (or SMTP server) gets its OAuth2 access tokens."""

    provider: Literal["google", "microsoft", "generic"] = "generic"
    client_id: str | None = Field(default=None, min_length=1)
    client_secret_env: str | None = None
    client_secret_file: Path | None = None
    client_secret_command: list[str] | None = None
    # Default: the provider's scopes for the protocol (IMAP, POP3 or SMTP).
    scopes: list[str] | None = None
    token_url: str | None = None
    authorize_url: str | None = None
    device_authorization_url: str | None = None
    # How `syncer auth login` signs in: device code, or a browser with a loopback redirect.
    flow: Literal["auto", "device", "browser"] = "auto"
    redirect_port: int = Field(default=0, ge=0, le=65535)
    # The SASL mechanism; auto = OAUTHBEARER where offered, else XOAUTH2.
    mechanism: Literal["auto", "xoauth2", "oauthbearer"] = "auto"
    token_store: Literal["file", "keyring"] = "file"
    token_file: Path | None = None
    # Instead of all of the above: a command that prints a valid access token.
    token_command: list[str] | None = None

    @field_validator("token_url", "authorize_url", "device_authorization_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urllib.parse.urlsplit(value)
        if parts.scheme == "https" and parts.hostname:
            return value
        if parts.scheme == "http" and parts.hostname in _LOOPBACK:
            return value  # a local test or proxy: nothing crosses the network
        raise ValueError(f"expected an https:// URL (got {value!r})")

    @model_validator(mode="after")
    def _oauth2_rules(self) -> OAuth2Config:
        if self.token_command is not None:
            given = [k for k in _SIGN_IN_KEYS if k in self.model_fields_set]
            if given:
                raise ValueError(
                    f"token_command prints the access token itself; remove {', '.join(given)} "
                    "(they configure syncer's own sign-in)"
                )
            if not self.token_command:
                raise ValueError("token_command is empty; give the command as a list of words")
            return self
        if self.client_id is None:
            raise ValueError(
                "client_id is missing (the OAuth2 client registered with the provider), "
                "or give token_command"
            )
        secrets = [k for k in _CLIENT_SECRET_KEYS if getattr(self, k) is not None]
        if len(secrets) > 1:
            raise ValueError(
                f"two client secret sources given ({', '.join(secrets)}); keep exactly one"
            )
        if self.token_file is not None and self.token_store != "file":
            raise ValueError('token_file is only used with token_store = "file"')
        if self.token_endpoint is None:
            raise ValueError('token_url is required for provider = "generic"')
        flow = self.sign_in_flow
        if flow == "device" and self.device_endpoint is None:
            raise ValueError(
                "the device flow needs device_authorization_url; give it, or set "
                'flow = "browser" with authorize_url'
            )
        if flow == "browser" and self.authorize_endpoint is None:
            raise ValueError(
                'the browser flow needs authorize_url; give it, or set flow = "device" '
                "with device_authorization_url"
            )
        return self

    @property
    def defaults(self) -> Provider:
        return PROVIDERS[self.provider]

    @property
    def token_endpoint(self) -> str | None:
        return self.token_url or self.defaults.token_url

    @property
    def authorize_endpoint(self) -> str | None:
        return self.authorize_url or self.defaults.authorize_url

    @property
    def device_endpoint(self) -> str | None:
        return self.device_authorization_url or self.defaults.device_authorization_url

    @property
    def sign_in_flow(self) -> Literal["device", "browser"]:
        """``flow``, else the provider's, else device when a device endpoint is known."""
        if self.flow != "auto":
            return self.flow
        if self.defaults.flow is not None:
            return self.defaults.flow
        return "device" if self.device_endpoint else "browser"

    def scopes_for(self, protocol: str) -> tuple[str, ...]:
        if self.scopes is not None:
            return tuple(self.scopes)
        return self.defaults.scopes.get(protocol, ())

    @property
    def has_client_secret(self) -> bool:
        return any(getattr(self, k) is not None for k in _CLIENT_SECRET_KEYS)


def anchor_token_file(oauth2: OAuth2Config, default_dir: Path, base_dir: Path) -> OAuth2Config:
    """``oauth2`` with ``token_file`` made absolute: relative to ``base_dir`` (the config
    file's folder), or ``default_dir/oauth2-tokens.json`` (beside the archive) when unset."""
    if oauth2.token_command is not None or oauth2.token_store != "file":
        return oauth2
    path = oauth2.token_file.expanduser() if oauth2.token_file else default_dir / TOKEN_FILE_NAME
    if not path.is_absolute():
        path = base_dir / path
    return oauth2.model_copy(update={"token_file": path})
