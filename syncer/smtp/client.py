"""SMTP client: :class:`SMTPRelay` sends prepared messages through one server.

Why it is built this way: stdlib smtplib does the wire work (TLS, EHLO, SASL,
dot-stuffing, CRLF line ends), but its ``sendmail`` hides what the outbox
needs to know: which command a server refused, whether that refusal is for
good (5xx) or for now (4xx), and which recipients were refused while others
were accepted. So the transaction is spelled out here: ``MAIL FROM``, one
``RCPT TO`` per recipient, ``DATA``.

Public API::

    settings = SMTPSettings("smtp.example.com", 587, "starttls", username="me", password=pw)
    with SMTPRelay(settings) as relay:
        relay.connect()                     # TLS, EHLO, AUTH; server-level errors here
        delivery = relay.send("bounces@example.com", ["a@example.net"], raw_bytes)

Behaviour worth knowing:

* ``security``: ``"tls"`` is implicit TLS (submissions, 465); ``"starttls"``
  (587) refuses to go on when the server does not offer STARTTLS; ``"plain"``
  (25) sends everything in clear and refuses to authenticate unless
  ``allow_insecure`` is set. Certificates are verified (TLS 1.2 or later, host
  name checked; ``ca_file``, when given, is the only CA trusted) unless
  ``tls_verify`` is false.
* Authentication (only with a ``username``) happens in one place,
  :meth:`SMTPRelay._authenticate`: the first mechanism of
  ``settings.mechanisms`` (strongest first: CRAM-MD5, PLAIN, LOGIN) that the
  server offers.
* The envelope sender is always explicit; it may differ from the header From
  and is where bounces go.
* A message with 8-bit bytes is sent with ``BODY=8BITMIME`` where offered.
  Line ends become CRLF on the wire, as SMTP requires (:rfc:`5321#section-2.3.8`).
* Some recipients refused for good (5xx) while others were accepted: the
  message is sent to the accepted ones and :class:`Delivery` lists the refused
  ones with the server's replies (sending again would duplicate it for the
  others). A recipient deferred (4xx) makes the whole message wait: RSET, and
  :class:`~syncer.errors.RelayUnavailable`, so a later attempt reaches everyone.

Errors (all mapped in :meth:`SMTPRelay._map_errors`, through the table shared
with IMAP and POP3, :mod:`syncer.protocols.errors`, in the words of
:mod:`syncer.smtp.errors`): a 4xx reply, a timeout or a lost connection is
:class:`~syncer.errors.RelayUnavailable` (transient); a 5xx reply to ``MAIL``,
``RCPT`` or ``DATA`` is :class:`~syncer.errors.RelayRejected`; a certificate
that does not verify, a refused login or a missing STARTTLS is a plain
:class:`~syncer.errors.RelayError` (the server, not the message, is the
problem). Every message quotes the server's reply.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

import structlog

from syncer.errors import RelayError
from syncer.oauth.sasl import TokenProvider
from syncer.protocols.errors import map_exceptions
from syncer.smtp.errors import SMTPWording, reply_text

__all__ = [
    "PASSWORD_MECHANISMS",
    "Delivery",
    "SMTPRelay",
    "SMTPSettings",
    "Security",
    "to_crlf",
]

log = structlog.get_logger(__name__)

Security = Literal["tls", "starttls", "plain"]

#: SASL mechanisms for a password, strongest first: CRAM-MD5 never sends the password.
PASSWORD_MECHANISMS = ("CRAM-MD5", "PLAIN", "LOGIN")

#: Positive completion replies to RCPT TO (251: "user not local; will forward").
_RCPT_OK = (250, 251)


@dataclass(frozen=True, slots=True)
class SMTPSettings:
    """Plain values for one SMTP server (the adapter never sees the configuration).

    :ivar mechanisms: the SASL mechanisms we may use, in order of preference; the
        first one the server offers is used.
    :ivar label: how to name the server in messages (the ``[[smtp]]`` name).
    """

    host: str
    port: int
    security: Security = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_verify: bool = True
    ca_file: str | None = None
    allow_insecure: bool = False
    timeout: float = 60.0
    mechanisms: tuple[str, ...] = PASSWORD_MECHANISMS
    local_hostname: str | None = None
    label: str | None = None
    # OAuth2 (issue 11): sign in with access tokens instead of the password, see smtp_oauth.
    oauth2: TokenProvider | None = field(default=None, repr=False)
    sasl_mechanism: str = "auto"

    @property
    def where(self) -> str:
        named = f"{self.label!r} " if self.label else ""
        return f"SMTP server {named}({self.host}:{self.port})"


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the server said when it took a message.

    :ivar reply: its answer to the end of DATA, e.g. ``250 2.0.0 Ok: queued as 4F2A``.
    :ivar refused: recipients refused while others were accepted -> the server's reply.
    """

    reply: str
    refused: dict[str, str] = field(default_factory=dict)


_LINE_END = re.compile(rb"\r\n|\r|\n")


def to_crlf(data: bytes) -> bytes:
    """Every line end as CRLF, as SMTP requires (many servers now refuse a bare LF).

    Bytes that already use CRLF come back unchanged (the same object).
    """
    rest = data.replace(b"\r\n", b"")
    if b"\n" not in rest and b"\r" not in rest:
        return data
    return _LINE_END.sub(b"\r\n", data)


class SMTPRelay:
    """One connection to one SMTP server, opened by :meth:`connect`, reused by
    :meth:`send`, closed by :meth:`close` (or the ``with`` block).

    After a transient failure inside :meth:`send` the connection is dropped;
    :attr:`connected` then says so, and the caller connects again.
    """

    def __init__(self, settings: SMTPSettings) -> None:
        self.settings = settings
        self._client: smtplib.SMTP | None = None

    def __enter__(self) -> SMTPRelay:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._client is not None

    # ------------------------------------------------------------------ session

    def connect(self) -> None:
        """Open the connection: TLS as configured, EHLO, then AUTH when a username is set.

        :raises RelayUnavailable: the server is unreachable, slow, or answered 4xx.
        :raises RelayError: the certificate did not verify, STARTTLS is missing, the
            login was refused, or a 5xx greeting.
        """
        self.close()
        s = self.settings
        if s.security == "plain" and s.username is not None and not s.allow_insecure:
            raise RelayError(
                f"{s.where}: refusing to send the password of {s.username!r} unencrypted "
                '(security = "plain").',
                hint='Use security = "starttls" or "tls", or set allow_insecure = true.',
            )
        context = self._tls_context() if s.security != "plain" else None
        client: smtplib.SMTP | None = None
        with self._map_errors("connecting"):
            if s.security == "tls":
                client = smtplib.SMTP_SSL(
                    s.host,
                    s.port,
                    local_hostname=s.local_hostname,
                    timeout=s.timeout,
                    context=context,
                )
            else:
                client = smtplib.SMTP(
                    s.host, s.port, local_hostname=s.local_hostname, timeout=s.timeout
                )
            try:
                client.ehlo_or_helo_if_needed()
                if s.security == "starttls":
                    if not client.has_extn("starttls"):
                        raise RelayError(
                            f"{s.where} does not offer STARTTLS; refusing to go on in clear.",
                            hint='Check the port (587 is usual), or use security = "tls" '
                            "for implicit TLS (465).",
                        )
                    code, text = client.starttls(context=context)
                    if code != 220:
                        raise smtplib.SMTPResponseException(code, text)
                    client.ehlo()
                self._authenticate(client)
            except BaseException:
                _drop(client)
                raise
        self._client = client
        log.debug("smtp.connected", server=s.where, security=s.security)

    def _authenticate(self, client: smtplib.SMTP) -> None:
        """Sign in, when a username is set: the one place where authentication happens.

        The mechanism is the first of ``settings.mechanisms`` that the server
        offers in its EHLO ``AUTH`` line (read after STARTTLS: servers often
        offer AUTH only then).

        :raises RelayError: when the server offers none of them, or refuses the login.
        """
        s = self.settings
        if s.username is None:
            return
        offered = str(client.esmtp_features.get("auth", "")).upper().split()
        if s.oauth2 is not None:  # OAuth2 (issue 11): XOAUTH2 / OAUTHBEARER
            from syncer.smtp.oauth import bearer_login

            bearer_login(
                client,
                host=s.host,
                port=s.port,
                username=s.username,
                tokens=s.oauth2,
                wanted=s.sasl_mechanism,
                offered=offered,
            )
            return
        mechanism = next((m for m in s.mechanisms if m in offered), None)
        if mechanism is None:
            raise RelayError(
                f"{s.where} offers no authentication syncer can use "
                f"(it offers: {' '.join(offered) or 'no AUTH at all'}; syncer speaks "
                f"{', '.join(s.mechanisms)}).",
                hint="Check the port and security (AUTH is often offered only after TLS), "
                "or remove username for a relay that needs no login.",
            )
        responders: dict[str, Callable[..., str]] = {
            "CRAM-MD5": client.auth_cram_md5,
            "PLAIN": client.auth_plain,
            "LOGIN": client.auth_login,
        }
        client.user, client.password = s.username, s.password or ""
        try:
            client.auth(mechanism, responders[mechanism], initial_response_ok=True)
        except smtplib.SMTPAuthenticationError as exc:
            if 400 <= exc.smtp_code < 500:
                raise
            raise RelayError(
                f"{s.where} refused the login of {s.username!r} ({mechanism}): "
                f"{reply_text(exc.smtp_code, exc.smtp_error)}.",
                hint="Check the [[smtp]] entry's username and password source.",
            ) from exc
        finally:
            client.password = ""

    def _tls_context(self) -> ssl.SSLContext:
        s = self.settings
        context = ssl.create_default_context(cafile=s.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if not s.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def close(self) -> None:
        """Say QUIT (politely, errors ignored) and drop the connection."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
            _drop(client)

    # ------------------------------------------------------------------ one message

    def send(
        self,
        sender: str,
        recipients: Sequence[str],
        data: bytes,
    ) -> Delivery:
        """Send one message: MAIL FROM ``sender``, RCPT TO each recipient, DATA ``data``.

        :raises RelayRejected: a 5xx reply to MAIL, to every RCPT, or to DATA.
        :raises RelayUnavailable: a 4xx reply, or the connection failed (it is dropped).
        :raises RelayError: when not connected.
        """
        if self._client is None:
            raise RelayError(f"{self.settings.where}: send() before connect().")
        client = self._client
        data = to_crlf(data)
        options: list[str] = []
        if client.has_extn("size"):
            options.append(f"SIZE={len(data)}")
        if not data.isascii() and client.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        if not (sender + "".join(recipients)).isascii():
            options.append("SMTPUTF8")
        with self._map_errors("sending", drop_on_transient=True):
            code, text = client.mail(sender, options)
            if code != 250:
                self._reset(client)
                raise smtplib.SMTPSenderRefused(code, text, sender)
            refused: dict[str, tuple[int, bytes]] = {}
            for rcpt in recipients:
                code, text = client.rcpt(rcpt)
                if code not in _RCPT_OK:
                    refused[rcpt] = (code, text)
            deferred = any(400 <= answer[0] < 500 for answer in refused.values())
            if deferred or len(refused) == len(recipients):
                self._reset(client)
                raise smtplib.SMTPRecipientsRefused(refused)
            code, text = client.data(data)
            if code != 250:
                raise smtplib.SMTPDataError(code, text)
        return Delivery(
            reply=reply_text(code, text),
            refused={rcpt: reply_text(c, t) for rcpt, (c, t) in refused.items()},
        )

    @staticmethod
    def _reset(client: smtplib.SMTP) -> None:
        """RSET after a refused transaction, so the connection serves the next message."""
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.rset()

    # ------------------------------------------------------------------ errors

    def _map_errors(
        self, doing: str, *, drop_on_transient: bool = False
    ) -> contextlib.AbstractContextManager[None]:
        """Translate every smtplib, ssl and socket error into the most specific RelayError
        (the shared table, :mod:`syncer.protocols.errors`; the words, :mod:`syncer.smtp.errors`).

        :param drop_on_transient: forget the connection on a transient failure (its
            state is unknown; the caller reconnects).
        """
        s = self.settings
        wording = SMTPWording(
            where=s.where,
            host=s.host,
            seconds=s.timeout,
            username=s.username,
            login_name=f"smtp:{s.label}" if s.label else s.host,
            doing=doing,
            forget=lambda: self._forget(drop_on_transient),
        )
        return map_exceptions(wording, lambda: self._forget(True))

    def _forget(self, drop: bool) -> None:
        if drop:
            client, self._client = self._client, None
            if client is not None:
                _drop(client)


def _drop(client: smtplib.SMTP) -> None:
    """Close the socket without a word to the server."""
    with contextlib.suppress(OSError):
        client.close()
