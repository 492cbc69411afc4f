"""The plain values one POP3 session needs: :class:`POP3Settings`.

Why a settings object: the adapter never sees the configuration (the layers
forbid it), and its twelve values used to be written out as constructor
parameters twice (``POP3Source(...)`` and ``POP3Source.open(...)``). One frozen
value is built once, in :mod:`syncer.connect` (or by a test).

Public API: :class:`POP3Settings`, :data:`Security`, :data:`Auth`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from syncer.oauth.sasl import TokenProvider

__all__ = ["Auth", "POP3Settings", "Security"]

Security = Literal["tls", "starttls", "plain"]
Auth = Literal["password", "apop", "sasl-plain", "oauth2"]


@dataclass(frozen=True, slots=True)
class POP3Settings:
    """Where and how to connect and sign in.

    :ivar host: server name; with TLS it is also the name the certificate must carry.
    :ivar security: ``"tls"`` (implicit TLS, port 995), ``"starttls"`` or ``"plain"``.
    :ivar auth: ``"password"`` (USER/PASS), ``"apop"``, ``"sasl-plain"`` or ``"oauth2"``
        (with a token provider in ``oauth2``).
    :ivar tls_verify: False disables certificate and host name checks (explicit opt-out).
    :ivar ca_file: PEM file of CAs to trust instead of the system store.
    :ivar timeout: seconds for connecting and for each socket read.
    :ivar account: the account's name, used in error messages and logs.
    :raises ValueError: for an unknown ``security`` or ``auth``, or ``auth="oauth2"``
        without a token provider (or one without it).
    """

    host: str
    port: int
    security: Security
    username: str
    password: str = field(default="", repr=False)
    tls_verify: bool = True
    ca_file: str | None = None
    timeout: float = 60.0
    auth: Auth = "password"
    account: str = ""
    oauth2: TokenProvider | None = field(default=None, repr=False)
    sasl_mechanism: str = "auto"

    def __post_init__(self) -> None:
        if self.security not in ("tls", "starttls", "plain"):
            raise ValueError(
                f"security must be 'tls', 'starttls' or 'plain', not {self.security!r}"
            )
        if self.auth not in ("password", "apop", "sasl-plain", "oauth2"):
            raise ValueError(
                f"auth must be 'password', 'apop', 'sasl-plain' or 'oauth2', not {self.auth!r}"
            )
        if (self.auth == "oauth2") != (self.oauth2 is not None):
            raise ValueError("auth='oauth2' and a token provider (oauth2=) go together")

    @property
    def label(self) -> str:
        """How messages name the account: its name, or user@host when none was given."""
        return self.account or f"{self.username}@{self.host}"
