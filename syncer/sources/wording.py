"""What the IMAP and POP3 adapters word alike: who failed, and the failures of any connection.

Why a module: which library exception is which kind of failure is decided once in
:mod:`syncer.protocols.errors`; each adapter then words the kinds. An OAuth2 sign-in
refused, a certificate that does not verify, TLS that fails, a server too slow and a
network that fails mean the same thing whatever protocol runs over the connection, so
they are worded here once (:class:`SourceWording`); the adapters' subclasses word what
their protocol's answers say (``IMAPWording``, ``POP3Wording``).

A certificate that does not verify is not transient (``SourceError``): retrying cannot
make it verify, and the SMTP client says the same of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from syncer.errors import SourceAuthError, SourceError, SourceUnavailable
from syncer.oauth.sasl import BearerRefused, NoMechanism
from syncer.sources.deadline import DeadlineExceeded

__all__ = ["ErrorContext", "SourceWording"]


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """Who failed: for the messages, and how to forget a connection gone bad."""

    label: str  # the account name, or user@host when none was given
    account: str | None
    host: str
    port: int
    timeout: float
    drop: Callable[[], None]


@dataclass(frozen=True, slots=True)
class SourceWording:
    """The kinds every mail source words alike (part of a
    :class:`~syncer.protocols.errors.Wording`)."""

    protocol: ClassVar[str]
    ctx: ErrorContext

    @property
    def _server(self) -> str:
        return f"{self.ctx.host}:{self.ctx.port}"

    @property
    def _folder(self) -> str | None:
        """The folder the failure happened in, when the protocol has folders."""
        return None

    @property
    def _suffix(self) -> str:
        """Where or during what it failed (`` in folder 'X'``, `` during RETR 3``), or ``""``."""
        return ""

    def sign_in(self, exc: BaseException) -> SourceError:
        assert isinstance(exc, BearerRefused | NoMechanism)
        ctx = self.ctx
        if isinstance(exc, BearerRefused):
            return SourceAuthError(
                f"Account {ctx.label!r}: {self.protocol} server {self._server} refused the "
                f"OAuth2 access token ({exc.mechanism}), also a freshly refreshed one.",
                account=ctx.account,
                hint=f"Run `syncer auth login {ctx.label}` to sign in again (and check the "
                f"username and the scopes). The server said: {exc.detail}",
            )
        return SourceError(
            f"Account {ctx.label!r}: {self.protocol} server {self._server}: {exc}.",
            account=ctx.account,
            hint='Set mechanism = "xoauth2" or "oauthbearer" in [accounts.oauth2] if the '
            "server supports one without announcing it.",
        )

    def certificate(self, exc: BaseException) -> SourceError:
        ctx = self.ctx
        return SourceError(
            f"Account {ctx.label!r}: the TLS certificate for {ctx.host} did not verify "
            f"({getattr(exc, 'verify_message', None) or exc}).",
            account=ctx.account,
            hint="Set ca_file to the CA that signed the server's certificate, or "
            "tls_verify = false if you accept an unverified connection.",
        )

    def tls(self, exc: BaseException) -> SourceError:
        return SourceUnavailable(
            f"Account {self.ctx.label!r}: TLS with {self._server} failed{self._suffix}: {exc}.",
            account=self.ctx.account,
            folder=self._folder,
        )

    def timeout(self, exc: BaseException) -> SourceError:
        ctx = self.ctx
        if isinstance(exc, DeadlineExceeded):  # its text says which answer took too long
            message = f"{self._server} is too slow{self._suffix}: {exc}."
        else:
            message = f"{self._server} did not answer within {ctx.timeout:g} s{self._suffix}."
        return SourceUnavailable(
            f"Account {ctx.label!r}: {message}", account=ctx.account, folder=self._folder
        )

    def network(self, exc: BaseException) -> SourceError:
        return SourceUnavailable(
            f"Account {self.ctx.label!r}: cannot talk to {self.protocol} server {self._server}"
            f"{self._suffix}: {exc}.",
            account=self.ctx.account,
            folder=self._folder,
            hint="Check the host, the port and the network.",
        )
