"""What every real IMAP/POP3 test server class shares: logins, ports and certificate once
running, and ``with``.

Dovecot, Cyrus and Courier differ in how they are configured and started; once
started, the tests use them alike (``server.ports.imap``, ``server.tls``,
``server.users``), so those few members are written once here. A subclass sets
``_ports`` in ``start`` (``None`` again in ``stop``) and ``_tls`` when it makes its
certificate.

Public API: :class:`RunningServer`, :class:`MailUser`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar, Generic, Self, TypeVar

from tests.servers.imap_helpers import ImapHelpers, IMAPPorts, ServerError
from tests.servers.tls import TLSFiles

P = TypeVar("P", bound=IMAPPorts)


@dataclass(frozen=True, slots=True)
class MailUser:
    """A login on the test server."""

    name: str
    password: str


class RunningServer(ImapHelpers, Generic[P]):
    """Members every test server has; see the module docstring."""

    #: The server's name in errors ("Dovecot") and the error class its helpers raise.
    server_name: ClassVar[str]
    error: ClassVar[type[ServerError]] = ServerError
    #: Logins the server needs for itself (an admin), not shown in :attr:`users`.
    internal_users: ClassVar[frozenset[str]] = frozenset()

    _ports: P | None
    _tls: TLSFiles | None
    _users: dict[str, str]

    @property
    def ports(self) -> P:
        """The ports of the running server.

        :raises ServerError: (the subclass's :attr:`error`) before ``start``.
        """
        if self._ports is None:
            raise self.error(f"the {self.server_name} server is not running")
        return self._ports

    @property
    def tls(self) -> TLSFiles:
        """The CA and server certificate (made on ``start`` when not passed in)."""
        if self._tls is None:
            raise self.error(f"the {self.server_name} server has not been started")
        return self._tls

    def password(self, user: str) -> str:
        return self._users[user]

    @property
    def users(self) -> list[MailUser]:
        return [MailUser(n, p) for n, p in self._users.items() if n not in self.internal_users]

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
