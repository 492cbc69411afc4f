"""The plain values one IMAP connection needs: :class:`IMAPSettings`.

Why a settings object: the adapter never sees the configuration (the layers
forbid it), and its sixteen values used to be written out as constructor
parameters twice (``IMAPSource(...)`` and ``IMAPSource.open(...)``) and a third
time at every construction site. One frozen value is built once, in
:mod:`syncer.connect` (or by a test), and handed to :class:`IMAPSource`,
:class:`IMAPTarget` and :class:`IMAPSession` alike.

Public API: :class:`IMAPSettings`, :data:`Security`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from syncer.oauth.sasl import TokenProvider
from syncer.sources.imap.listing import KINDS

__all__ = ["IMAPSettings", "Security"]

Security = Literal["tls", "starttls", "plain"]


@dataclass(frozen=True, slots=True)
class IMAPSettings:
    """Where and how to connect, and what ``list_folders`` covers.

    :ivar host: server name; with TLS it is also the name the certificate must carry.
    :ivar security: ``"tls"`` (implicit TLS, port 993), ``"starttls"`` or
        ``"plain"`` (no TLS; the config layer only allows it with allow_insecure).
    :ivar tls_verify: False disables certificate and host name checks (explicit opt-out).
    :ivar ca_file: PEM file of CAs to trust instead of the system store.
    :ivar timeout: seconds for connecting and for each socket read.
    :ivar namespaces: which namespaces ``list_folders`` covers: any of
        ``personal``, ``other`` (other users' folders), ``shared`` (public).
    :ivar include: display-name globs to keep (empty: all).
    :ivar exclude: display-name globs to drop (wins over include).
    :ivar subscribed_only: list only subscribed folders.
    :ivar account: the account's name, used in error messages.
    :ivar max_bytes_per_second: cap on the body download rate (None: no cap).
    :ivar oauth2: sign in with OAuth2 access tokens from this provider (XOAUTH2 or
        OAUTHBEARER, ``sasl_mechanism`` or what the server offers) instead of the password.
    :raises ValueError: for an unknown ``security`` or namespace kind.
    """

    host: str
    port: int
    security: Security
    username: str
    password: str = field(default="", repr=False)
    tls_verify: bool = True
    ca_file: str | None = None
    timeout: float = 60.0
    namespaces: tuple[str, ...] = ("personal",)
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    subscribed_only: bool = False
    account: str = ""
    max_bytes_per_second: float | None = None
    oauth2: TokenProvider | None = field(default=None, repr=False)
    sasl_mechanism: str = "auto"

    def __post_init__(self) -> None:
        if self.security not in ("tls", "starttls", "plain"):
            raise ValueError(
                f"security must be 'tls', 'starttls' or 'plain', not {self.security!r}"
            )
        for name in ("namespaces", "include", "exclude"):  # lists from callers stay immutable
            object.__setattr__(self, name, tuple(getattr(self, name)))
        unknown = [n for n in self.namespaces if n not in KINDS]
        if unknown:
            raise ValueError(f"unknown namespace kinds {unknown}; choose from {list(KINDS)}")

    @property
    def label(self) -> str:
        """How messages name the account: its name, or user@host when none was given."""
        return self.account or f"{self.username}@{self.host}"
