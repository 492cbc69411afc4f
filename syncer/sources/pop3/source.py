"""POP3 adapter: :class:`POP3Source` implements ``MailDropSource`` for any RFC 1939 server.

Why it is built this way: stdlib poplib does what is easy to get wrong --
TCP/TLS set-up, STLS (:rfc:`2595`), USER/PASS, APOP -- and the commands after
login are sent on its connection (``_putcmd``/``_getresp``/``file``), while
every multi-line answer (CAPA, LIST, UIDL, TOP, RETR) is read by
:mod:`syncer.sources.pop3.wire`: poplib's line-at-a-time reader refuses lines over 2,048
bytes, strips line ends, and is slow on large messages.

Public API::

    settings = POP3Settings("pop.example.com", 995, "tls", "me", secret, account="home")
    source = POP3Source.open(settings)
    try:
        for entry in source.listing():        # MaildropEntry(number, size, uidl)
            message = source.retrieve(entry)   # RemoteMessage, raw bytes checked
        source.delete(3)                       # marked only
        source.quit()                          # the server deletes what was marked
    finally:
        source.close()                         # never deletes anything quit() did not

Behaviour worth knowing:

* ``security``: ``"tls"`` is implicit TLS (pop3s, 995), ``"starttls"`` sends STLS
  on 110 and refuses to go on without it, ``"plain"`` sends everything in clear
  (the config layer allows it only with ``allow_insecure``). Certificates are
  verified as for IMAP (TLS 1.2 or later, host name checked) unless
  ``tls_verify`` is false.
* ``auth``: ``"password"`` (USER/PASS), ``"apop"`` (refused before anything is
  sent when the greeting carries no ``<timestamp>``), ``"sasl-plain"``
  (``AUTH PLAIN`` with an initial response, :rfc:`5034`; only where CAPA lists
  ``SASL ... PLAIN``), ``"oauth2"`` (``AUTH OAUTHBEARER`` or ``XOAUTH2`` with an
  access token from the ``oauth2`` provider, refreshed once when refused).
* CAPA is read before login (for STLS and SASL) and again after it (:rfc:`2449`
  allows the list to change); a server without CAPA just has no capabilities.
* UIDL: a server that refuses it gives entries with ``uidl=None``; the
  pipeline then falls back to fingerprints (:meth:`headers`).
* RETR is checked against LIST's size (see :func:`syncer.sources.pop3.wire.checked_size`):
  a mismatch is a ``ProtocolViolation`` naming the message, and the session
  stays usable for the next message.
* Deletions happen only at a successful :meth:`quit`. :meth:`close` sends QUIT
  only when nothing is marked; otherwise it drops the connection, so the
  server deletes nothing (:rfc:`1939#section-6`).
* Dovecot sets ``\\Seen`` on retrieved messages (unless its
  ``pop3_no_flag_updates`` is set); that matters only to IMAP clients of the
  same mailbox.

Errors: every library exception is translated in :meth:`POP3Source._map_errors`
(the table shared with IMAP and SMTP, :mod:`syncer.protocols.errors`, in the
words of :mod:`syncer.sources.pop3.errors`) into ``SourceAuthError``, ``SourceUnavailable``
(transient), ``ProtocolViolation`` or ``SourceError``.
"""

from __future__ import annotations

import base64
import contextlib
import io
import poplib
import re
from types import TracebackType
from typing import Protocol, cast

import structlog

from syncer.model import MaildropEntry, RemoteMessage
from syncer.oauth.sasl import (
    BearerRefused,
    Exchange,
    choose_mechanism,
    initial_response,
    sign_in,
)
from syncer.sources.deadline import Guard, LineTooLong, read_line, read_some
from syncer.sources.pop3.errors import map_errors
from syncer.sources.pop3.settings import Auth, POP3Settings, Security
from syncer.sources.pop3.wire import (
    MAX_LISTING,
    TRANSIENT,
    ConnectionClosed,
    FramingError,
    NotOffered,
    body_allowance,
    checked_size,
    parse_capa_lines,
    parse_scan_lines,
    parse_uidl_lines,
    read_multiline,
    ssl_context,
)
from syncer.sources.wording import ErrorContext

__all__ = ["Auth", "POP3Source", "Security"]

log = structlog.get_logger(__name__)


#: The folder POP3 messages are archived in: a maildrop is one mailbox, the INBOX.
INBOX = "INBOX"

#: An APOP-capable greeting ends in a msg-id style timestamp (:rfc:`1939#section-7`);
#: the same pattern poplib's ``apop()`` uses.
_APOP_TIMESTAMP = re.compile(rb"\+OK.[^<]*(<.*>)")


class _Wire(Protocol):
    """The poplib internals this adapter sends commands through (stable since Python 3.0)."""

    def _putcmd(self, line: str) -> None: ...

    def _getresp(self) -> bytes: ...

    def _shortcmd(self, line: str) -> bytes: ...


def _wire(client: poplib.POP3) -> _Wire:
    return cast(_Wire, client)


class POP3Source:
    """A ``MailDropSource`` over POP3; see the module docstring.

    :param settings: where and how to connect and sign in (:class:`POP3Settings`).
    """

    def __init__(self, settings: POP3Settings) -> None:
        self.settings = settings
        self._client: poplib.POP3 | None = None
        self._capabilities: frozenset[str] = frozenset()
        self._uidls: dict[int, str] = {}
        self._marked = 0  # messages marked with DELE in this session

    def __repr__(self) -> str:  # never shows the password
        s = self.settings
        return (
            f"POP3Source(account={s.account!r}, host={s.host!r}, port={s.port}, "
            f"security={s.security!r}, username={s.username!r}, auth={s.auth!r})"
        )

    # -- connection ------------------------------------------------------------------------

    @classmethod
    def open(cls, settings: POP3Settings) -> POP3Source:
        """Construct, then :meth:`connect`.

        :raises SourceError: (and subclasses) when connecting or logging in fails.
        """
        return cls(settings).connect()

    def connect(self) -> POP3Source:
        """Connect, secure the connection, read CAPA, log in, read CAPA again; idempotent.

        :raises SourceAuthError: when the server refuses the credentials.
        :raises SourceUnavailable: network trouble, timeouts, TLS failures.
        :raises SourceError: when STLS, APOP or SASL PLAIN is asked for but not
            offered, or the certificate does not verify.
        """
        if self._client is not None:
            return self
        with self._map_errors("connecting"):
            context = None
            if self.settings.security != "plain":
                context = ssl_context(self.settings.ca_file, self.settings.tls_verify)
                if not self.settings.tls_verify:
                    log.warning(
                        "pop3.tls.unverified", host=self.settings.host, port=self.settings.port
                    )
            if self.settings.security == "tls":
                self._client = poplib.POP3_SSL(
                    self.settings.host,
                    self.settings.port,
                    timeout=self.settings.timeout,
                    context=context,
                )
            else:
                self._client = poplib.POP3(
                    self.settings.host, self.settings.port, timeout=self.settings.timeout
                )
        try:
            with self._map_errors("CAPA"):
                before = self._capa()
                if self.settings.security == "starttls":
                    if "STLS" not in before:
                        raise NotOffered(
                            "STLS", 'Use security = "tls" (port 995), or check the port.'
                        )
                    self._connection().stls(context)
                    before = self._capa()  # RFC 2595: forget what was said in clear
            self._login(before)
            with self._map_errors("CAPA"):
                after = self._capa()
        except BaseException:
            self._drop()
            raise
        self._capabilities = frozenset(after or before)
        log.info(
            "pop3.connected",
            host=self.settings.host,
            port=self.settings.port,
            security=self.settings.security,
            auth=self.settings.auth,
            capabilities=sorted(self._capabilities),
            sasl=list(before.get("SASL", ())),
        )
        return self

    def _login(self, capa: dict[str, tuple[str, ...]]) -> None:
        client = self._connection()
        with self._map_errors(f"login ({self.settings.auth})", login=self.settings.auth):
            if self.settings.auth == "apop":
                if not _APOP_TIMESTAMP.match(client.welcome):
                    raise NotOffered(
                        "APOP (its greeting carries no <timestamp>)",
                        'Set auth = "password" (over TLS) or "sasl-plain" for this account.',
                    )
                client.apop(self.settings.username, self.settings.password)
            elif self.settings.auth == "sasl-plain":
                offered = tuple(m.upper() for m in capa.get("SASL", ()))
                if "PLAIN" not in offered:
                    listed = " ".join(offered) or "no SASL mechanism"
                    raise NotOffered(
                        f"SASL PLAIN (CAPA lists {listed})",
                        'Set auth = "password" for this account.',
                    )
                token = base64.b64encode(
                    b"\0"
                    + self.settings.username.encode()
                    + b"\0"
                    + self.settings.password.encode()
                ).decode("ascii")
                answer = _wire(client)._shortcmd(f"AUTH PLAIN {token}")
                if not answer.upper().startswith(b"+OK"):
                    # "+ " asks for the credentials again (no initial response understood).
                    _wire(client)._shortcmd(token)
            elif self.settings.oauth2 is not None:
                mechanism = choose_mechanism(capa.get("SASL", ()), self.settings.sasl_mechanism)
                sign_in(self.settings.oauth2, lambda token: self._auth_bearer(mechanism, token))
            else:
                client.user(self.settings.username)
                client.pass_(self.settings.password)

    def _auth_bearer(self, mechanism: str, token: str) -> None:
        """``AUTH XOAUTH2`` / ``AUTH OAUTHBEARER`` (:rfc:`5034`, :rfc:`7628`).

        The initial response goes on the AUTH line when the line stays within 255
        octets (RFC 5034 section 4), else after the server's empty challenge, which is
        the usual case: real access tokens run to a kilobyte or more. A refusal comes
        as an error challenge, answered as the mechanism requires, then ``-ERR``.

        :raises BearerRefused: when the server refuses the token.
        """
        client = _wire(self._connection())
        exchange = Exchange(
            mechanism,
            initial_response(
                mechanism, self.settings.username, token, self.settings.host, self.settings.port
            ),
        )
        first = base64.b64encode(exchange()).decode("ascii")
        try:
            if len(f"AUTH {mechanism} {first}") <= 255:
                answer = client._shortcmd(f"AUTH {mechanism} {first}")
            else:
                client._shortcmd(f"AUTH {mechanism}")  # "+ " (empty challenge) or -ERR
                answer = client._shortcmd(first)
            for _round in range(3):  # the initial response, then at most an error challenge
                if answer.upper().startswith(b"+OK"):
                    return
                challenge = base64.b64decode(answer[1:].strip() or b"")
                answer = client._shortcmd(base64.b64encode(exchange(challenge)).decode("ascii"))
            raise poplib.error_proto(b"-ERR the server kept challenging an OAuth2 login")
        except poplib.error_proto as exc:
            said = exc.args[0] if exc.args else b""
            if not isinstance(said, bytes) or TRANSIENT.search(said.decode("utf-8", "replace")):
                raise  # a lost connection, or "later": the error mapping decides
            raise BearerRefused(
                mechanism, exchange.error or said.decode("utf-8", "replace")
            ) from exc

    def _capa(self) -> dict[str, tuple[str, ...]]:
        """CAPA as name -> arguments; empty for a server without CAPA (RFC 2449 is optional)."""
        try:
            return parse_capa_lines(self._multiline("CAPA").splitlines())
        except poplib.error_proto as exc:
            if exc.args and isinstance(exc.args[0], bytes):
                return {}  # the server answered -ERR: no CAPA
            raise

    @property
    def capabilities(self) -> frozenset[str]:
        """Upper-cased CAPA names read after login (empty before :meth:`connect`)."""
        return self._capabilities

    def close(self) -> None:
        """End the session; never raises.

        Sends QUIT only when no message is marked for deletion: with marks, the
        connection is dropped instead, so the server deletes nothing.
        """
        client = self._client
        if client is None:
            return
        if self._marked:
            log.warning("pop3.closed_without_quit", marked=self._marked)
        else:
            with contextlib.suppress(Exception):
                client.quit()
        self._drop()
        log.debug("pop3.closed", host=self.settings.host, port=self.settings.port)

    def __enter__(self) -> POP3Source:
        return self.connect()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _drop(self) -> None:
        """Forget the connection without QUIT: whatever was marked stays on the server."""
        client, self._client = self._client, None
        self._marked = 0
        self._uidls = {}
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def _connection(self) -> poplib.POP3:
        if self._client is None:
            raise ConnectionClosed("the session is not open (it ended after an earlier error)")
        return self._client

    @property
    def _label(self) -> str:
        return self.settings.label

    def _map_errors(
        self, command: str | None = None, *, login: str | None = None
    ) -> contextlib.AbstractContextManager[None]:
        """The one place library exceptions become ``SourceError`` subclasses
        (see :func:`syncer.sources.pop3.errors.map_errors`)."""
        return map_errors(
            ErrorContext(
                label=self._label,
                account=self.settings.account or None,
                host=self.settings.host,
                port=self.settings.port,
                timeout=self.settings.timeout,
                drop=self._drop,
            ),
            command,
            login=login,
        )

    # -- commands ---------------------------------------------------------------------------

    def _multiline(self, command: str, expected: int = 0) -> bytes:
        """Send ``command`` and return its multi-line answer, unstuffed.

        The status line and the answer are read under one deadline (3 x timeout
        plus ``expected`` bytes at the slowest acceptable rate,
        :mod:`syncer.sources.deadline`), and the answer may not exceed ``expected``
        plus an allowance (or :data:`MAX_LISTING` when nothing is expected), so a
        stalled, trickling or endless answer fails instead of hanging or filling memory.

        :raises poplib.error_proto: for a -ERR answer (the stream stays in step).
        """
        client = self._connection()
        # poplib's file is the socket's BufferedReader (sock.makefile("rb")), also after STLS.
        reader = cast(io.BufferedReader, client.file)
        sock = client.sock
        guard = Guard(self.settings.timeout)
        guard.arm(command.split(" ", 1)[0], expected)
        _wire(client)._putcmd(command)
        try:
            line = read_line(reader, sock, guard)
        except LineTooLong as exc:
            raise FramingError(str(exc)) from None
        if not line:
            raise ConnectionClosed(f"the connection closed before the answer to {command}")
        if not line.startswith(b"+"):
            raise poplib.error_proto(line.rstrip(b"\r\n"))
        limit = body_allowance(expected) if expected else MAX_LISTING
        return read_multiline(lambda n: read_some(reader, sock, guard, n), max_bytes=limit)

    def listing(self) -> list[MaildropEntry]:
        """LIST and UIDL; entries in message-number order.

        A server that refuses UIDL (other than "try again later") gives entries
        without uidl; one that gives UIDLs for only some messages leaves the
        others without.

        :raises SourceError:
        """
        with self._map_errors("LIST"):
            sizes = parse_scan_lines(self._multiline("LIST").splitlines())
        with self._map_errors("UIDL"):
            try:
                uidls = parse_uidl_lines(self._multiline("UIDL").splitlines())
            except poplib.error_proto as exc:
                answer = exc.args[0] if exc.args else ""
                if not isinstance(answer, bytes) or TRANSIENT.search(
                    answer.decode(errors="replace")
                ):
                    raise
                log.warning("pop3.no_uidl", answer=answer.decode("utf-8", "replace"))
                uidls = {}
        self._uidls = uidls
        return [
            MaildropEntry(number=number, size=size, uidl=uidls.get(number))
            for number, size in sorted(sizes.items())
        ]

    def headers(self, number: int) -> bytes:
        """The header block of message ``number`` (``TOP number 0``).

        :raises SourceError:
        """
        command = f"TOP {number} 0"
        with self._map_errors(command):
            return self._multiline(command)

    def retrieve(self, entry: MaildropEntry) -> RemoteMessage:
        """RETR ``entry``, checked against its LIST size.

        :raises ProtocolViolation: when the size does not match (nothing else is affected).
        :raises SourceError:
        """
        command = f"RETR {entry.number}"
        with self._map_errors(command):
            body = self._multiline(command, entry.size)
            raw = checked_size(entry.number, entry.uidl, body, entry.size)
        log.debug("pop3.retr", number=entry.number, uidl=entry.uidl, size=len(raw))
        return RemoteMessage(folder=INBOX, uid=0, raw=raw, size=entry.size, uidl=entry.uidl)

    def delete(self, number: int) -> None:
        """Mark message ``number`` for deletion (DELE); the server removes it at :meth:`quit`.

        :raises SourceError:
        """
        command = f"DELE {number}"
        with self._map_errors(command):
            _wire(self._connection())._shortcmd(command)
        self._marked += 1
        log.info("pop3.dele", number=number, uidl=self._uidls.get(number))

    def quit(self) -> None:
        """QUIT: the server deletes the marked messages and the session ends.

        :raises SourceError: when QUIT is refused or the connection drops; take
            the marked messages as not deleted then (:rfc:`1939#section-6`:
            "-ERR some deleted messages not removed").
        """
        marked = self._marked
        with self._map_errors("QUIT"):
            client = self._connection()
            try:
                _wire(client)._shortcmd("QUIT")
            finally:
                self._drop()
        log.info("pop3.quit", deleted=marked)
