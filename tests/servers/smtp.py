"""A real SMTP server (aiosmtpd, the aio-libs server) on loopback ports, for tests.

syncer's SMTP client is tested against a real server speaking the real
protocol, not a mock. :class:`SMTPTestServer` runs three aiosmtpd listeners
that share one :class:`RecordingHandler`:

- ``starttls``: plain on connect, STARTTLS offered, AUTH only after TLS;
- ``tls``: implicit TLS (like port 465);
- ``plain``: no TLS at all, AUTH offered in clear (to test ``allow_insecure``).

The certificate is from :mod:`tests.servers.tls` (a throwaway CA; the name
``localhost`` only, so dialling ``127.0.0.1`` with verification on is refused).

What the handler offers:

- AUTH PLAIN and LOGIN (aiosmtpd's own) and CRAM-MD5 (here), checked against
  ``users``; ``mechanisms=`` chooses which are advertised.
- **Adding a mechanism**: define ``async def auth_NAME(self, server, args) ->
  AuthResult`` on :class:`RecordingHandler` (a dash in the name written as a
  double underscore, as aiosmtpd maps ``auth_CRAM__MD5`` to ``CRAM-MD5``), use
  ``await server.challenge_auth(...)`` for each round trip and
  :meth:`RecordingHandler.check` for the credentials, and list NAME in
  :data:`ALL_MECHANISMS`.
- Scripted replies: ``server.script("DATA", "451 4.3.0 Try later")`` makes the
  next DATA (or MAIL, RCPT) get that reply instead of the normal one, once per
  call; a reply may be a callable (it runs at that instant and returns the
  reply). ``address=`` restricts a MAIL or RCPT script to one address.
- Everything accepted is recorded as a :class:`Received` (envelope, exact bytes
  as they came off the wire after dot-unstuffing, the login, whether TLS was on);
  ``handler.on_accept`` is called with it before the 250 reply is sent.

- OAuth2 (issue 11): XOAUTH2 and OAUTHBEARER (:rfc:`7628`), advertised only when
  listed in ``mechanisms=`` (see :data:`BEARER_MECHANISMS`); each bearer token is
  checked by ``handler.bearer(user, token)`` (set it, e.g. to an
  :class:`tests.servers.oauth.OAuthServer`'s ``valid``), and a refused one gets
  the error challenge real servers send before ``535``.

Public API: :class:`SMTPTestServer`, :class:`RecordingHandler`, :class:`Received`,
:data:`USERS`, :data:`ALL_MECHANISMS`, :data:`BEARER_MECHANISMS`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.servers.tls import TLSFiles, make_tls_files

#: Who may log in: user -> password.
USERS = {"relay": "s3cret-pw"}
#: What the server can advertise (aiosmtpd's names).
ALL_MECHANISMS = ("CRAM-MD5", "LOGIN", "PLAIN")
#: OAuth2 mechanisms, hidden unless asked for in ``mechanisms=`` (issue 11).
BEARER_MECHANISMS = ("OAUTHBEARER", "XOAUTH2")

Reply = str | Callable[[], str]


@dataclass(frozen=True, slots=True)
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    mail_options: tuple[str, ...]
    login: str | None
    tls: bool
    listener: str


@dataclass
class _Script:
    command: str
    reply: Reply
    address: str | None


@dataclass
class RecordingHandler:
    """The aiosmtpd handler: scripted replies, credential checks, a record of mail."""

    users: dict[str, str] = field(default_factory=lambda: dict(USERS))
    received: list[Received] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)  # (mechanism, user)
    #: Called with each message accepted, before the 250 reply goes out (e.g. to kill
    #: the client at the one instant a crash duplicates mail).
    on_accept: Callable[[Received], None] | None = None
    #: OAuth2: says whether a bearer token is valid for a user (None: refuse them all).
    bearer: Callable[[str, str], bool] | None = None
    _scripts: list[_Script] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ test side

    def script(self, command: str, reply: Reply, *, address: str | None = None) -> None:
        with self._lock:
            self._scripts.append(_Script(command.upper(), reply, address))

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.logins.clear()
            self._scripts.clear()
            self.on_accept = None

    def _scripted(self, command: str, address: str | None = None) -> str | None:
        with self._lock:
            for item in self._scripts:
                if item.command == command and item.address in (None, address):
                    self._scripts.remove(item)
                    break
            else:
                return None
        return item.reply() if callable(item.reply) else item.reply

    # ------------------------------------------------------------------ authentication

    def check(self, server: SMTP, mechanism: str, login: str, ok: bool) -> AuthResult:
        """Record a login attempt and answer it the way aiosmtpd expects."""
        if ok:
            with self._lock:
                self.logins.append((mechanism, login))
            return AuthResult(success=True, auth_data=LoginPassword(login.encode(), b""))
        return AuthResult(success=False, handled=False)

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """aiosmtpd's authenticator for its own PLAIN and LOGIN."""
        assert isinstance(data, LoginPassword)
        login, password = data.login.decode(), data.password.decode()
        return self.check(server, mechanism, login, self.users.get(login) == password)

    async def auth_CRAM__MD5(self, server: SMTP, args: list[str]) -> AuthResult:
        """CRAM-MD5 (:rfc:`2195`): the client proves it knows the password with an HMAC."""
        challenge = f"<{secrets.token_hex(8)}@localhost>".encode()
        answer = await server.challenge_auth(challenge)
        if not isinstance(answer, bytes) or b" " not in answer:
            return AuthResult(success=False, handled=False)
        login, digest = answer.decode().rsplit(" ", 1)
        password = self.users.get(login)
        expected = (
            hmac.new(password.encode(), challenge, hashlib.md5).hexdigest() if password else ""
        )
        return self.check(
            server, "CRAM-MD5", login, bool(expected) and hmac.compare_digest(expected, digest)
        )

    # OAuth2 (issue 11): the client's message is parsed by tests.servers.oauth.parse_bearer.

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._bearer(server, "XOAUTH2", args)

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._bearer(server, "OAUTHBEARER", args)

    async def _bearer(self, server: SMTP, mechanism: str, args: list[str]) -> AuthResult:
        from tests.servers.oauth import ERROR_CHALLENGE, parse_bearer

        if len(args) > 1:
            initial = base64.b64decode(args[1])
        else:
            answer = await server.challenge_auth(b"")
            initial = answer if isinstance(answer, bytes) else b""
        user, token = parse_bearer(mechanism, initial)
        ok = self.bearer is not None and self.bearer(user, token)
        if not ok:
            await server.challenge_auth(ERROR_CHALLENGE)  # the client must answer it
        return self.check(server, mechanism, user, ok)

    # ------------------------------------------------------------------ the transaction

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        scripted = self._scripted("MAIL", address)
        if scripted is not None:
            return scripted
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        scripted = self._scripted("RCPT", address)
        if scripted is not None:
            return scripted
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        scripted = self._scripted("DATA")
        if scripted is not None:
            return scripted
        login = session.auth_data.login.decode() if session.auth_data else None
        assert envelope.mail_from is not None and envelope.original_content is not None
        got = Received(
            mail_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=envelope.original_content,
            mail_options=tuple(envelope.mail_options),
            login=login,
            tls=_on_tls(server),
            listener=server.hostname,
        )
        with self._lock:
            self.received.append(got)
        if self.on_accept is not None:
            self.on_accept(got)
        return f"250 2.0.0 Ok: queued as {secrets.token_hex(4).upper()}"


def _on_tls(server: SMTP) -> bool:
    transport = server.transport
    return transport is not None and transport.get_extra_info("ssl_object") is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class SMTPTestServer:
    """Three aiosmtpd listeners (starttls, tls, plain) on free loopback ports.

    :param mechanisms: the AUTH mechanisms advertised (default: all of
        :data:`ALL_MECHANISMS`).
    """

    host = "127.0.0.1"

    def __init__(self, directory: Path, *, mechanisms: Iterable[str] = ALL_MECHANISMS) -> None:
        self.tls: TLSFiles = make_tls_files(directory / "tls")
        self.handler = RecordingHandler()
        offered = set(mechanisms)
        hidden = [m for m in (*ALL_MECHANISMS, *BEARER_MECHANISMS) if m not in offered]
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.tls.cert), str(self.tls.key))
        common: dict[str, Any] = {
            "authenticator": self.handler.authenticate,
            "auth_exclude_mechanism": hidden,
            "ready_timeout": 10.0,
        }
        self.ports: dict[str, int] = {}
        self._controllers: dict[str, Controller] = {}
        for listener, extra in (
            ("starttls", {"tls_context": context, "auth_require_tls": True}),
            ("tls", {"ssl_context": context, "auth_require_tls": False}),
            ("plain", {"auth_require_tls": False}),
        ):
            port = _free_port()
            self.ports[listener] = port
            self._controllers[listener] = Controller(
                self.handler,
                hostname=self.host,
                port=port,
                server_hostname=listener,  # what EHLO answers; tells the listeners apart
                **common,
                **extra,
            )

    def start(self) -> SMTPTestServer:
        started: list[Controller] = []
        try:
            for controller in self._controllers.values():
                controller.start()
                started.append(controller)
        except BaseException:
            for controller in started:
                controller.stop()
            raise
        return self

    def stop(self) -> None:
        for controller in self._controllers.values():
            controller.stop(no_assert=True)

    def __enter__(self) -> SMTPTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ shortcuts

    @property
    def received(self) -> list[Received]:
        with self.handler._lock:
            return list(self.handler.received)

    def script(self, command: str, reply: Reply, *, address: str | None = None) -> None:
        self.handler.script(command, reply, address=address)

    def reset(self) -> None:
        self.handler.reset()
