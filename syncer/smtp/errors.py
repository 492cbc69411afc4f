"""How the SMTP client words its failures: :class:`SMTPWording` for the shared table.

Which library exception is which kind of failure is decided once for every
protocol in :mod:`syncer.protocols.errors`; this module says, per kind, which
``RelayError`` the SMTP client raises: a 4xx reply, a timeout or a lost
connection is :class:`~syncer.errors.RelayUnavailable` (transient); a 5xx reply
to ``MAIL``, ``RCPT`` or ``DATA`` is :class:`~syncer.errors.RelayRejected`; a
certificate that does not verify, a refused login or a missing capability is a
plain :class:`~syncer.errors.RelayError` (the server, not the message, is the
problem). Every message quotes the server's reply.

Public API (private to ``syncer.smtp``): :class:`SMTPWording`, :func:`reply_text`.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from dataclasses import dataclass

from syncer.errors import RelayError, RelayRejected, RelayUnavailable
from syncer.oauth.sasl import BearerRefused, NoMechanism

_LATER = "syncer will try again later."


def reply_text(code: int, text: bytes | str) -> str:
    """``"550 5.1.1 No such user"``: a reply as one line, whitespace folded."""
    body = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(body.split())}".strip()


@dataclass(frozen=True, slots=True)
class SMTPWording:
    """The SMTP client's :class:`~syncer.protocols.errors.Wording`.

    :ivar where: the server as messages name it; ``doing`` what was under way;
        ``seconds`` the timeout.
    :ivar forget: drops the connection when the caller asked for that on a
        transient failure or a refusal of the server's (its state is unknown then).
    :ivar login_name: what to pass to ``syncer auth login`` in an OAuth2 hint.
    """

    where: str
    host: str
    seconds: float
    username: str | None
    login_name: str
    doing: str
    forget: Callable[[], None]

    def sign_in(self, exc: BaseException) -> RelayError:
        if isinstance(exc, NoMechanism):
            return RelayError(
                f"{self.where}: {exc}.",
                hint='Set mechanism = "xoauth2" or "oauthbearer" in the oauth2 table if the '
                "server supports one without announcing it (often only after STARTTLS).",
            )
        assert isinstance(exc, BearerRefused)
        return RelayError(
            f"{self.where} refused the OAuth2 access token of {self.username!r} "
            f"({exc.mechanism}), also a freshly refreshed one.",
            hint=f"Run `syncer auth login {self.login_name}` to sign in again (and check the "
            f"username and the scopes). The server said: {exc.detail}",
        )

    def not_offered(self, exc: BaseException) -> RelayError:
        self.forget()
        return RelayError(f"{self.where} does not support what syncer needs: {exc}.")

    def login(self, exc: BaseException) -> RelayError:  # a 4xx answer to AUTH
        if not isinstance(exc, smtplib.SMTPAuthenticationError):
            return self.refused(exc)
        self.forget()
        return RelayUnavailable(
            f"{self.where} could not log in for now: {reply_text(exc.smtp_code, exc.smtp_error)}.",
            hint=_LATER,
        )

    def refused(self, exc: BaseException) -> RelayError:
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            return self._recipients(exc)
        if isinstance(exc, smtplib.SMTPResponseException):
            return self._reply(exc)
        self.forget()  # the base class; smtplib raises it bare too
        return RelayError(f"{self.where}: {self.doing} failed: {exc}.")

    def _recipients(self, exc: smtplib.SMTPRecipientsRefused) -> RelayError:
        replies = {rcpt: reply_text(*answer) for rcpt, answer in exc.recipients.items()}
        listed = "; ".join(f"<{rcpt}>: {reply}" for rcpt, reply in replies.items())
        if any(reply.startswith("4") for reply in replies.values()):
            self.forget()
            return RelayUnavailable(f"{self.where} deferred recipients: {listed}.", hint=_LATER)
        return RelayRejected(f"{self.where} refused every recipient: {listed}.")

    def _reply(self, exc: smtplib.SMTPResponseException) -> RelayError:
        """MAIL (SMTPSenderRefused), DATA (SMTPDataError), the greeting
        (SMTPConnectError), EHLO (SMTPHeloError) or STARTTLS."""
        reply = reply_text(exc.smtp_code, exc.smtp_error)
        what = {
            smtplib.SMTPSenderRefused: "the sender",
            smtplib.SMTPDataError: "the message",
            smtplib.SMTPConnectError: "the connection",
            smtplib.SMTPHeloError: "our EHLO",
        }.get(type(exc), f"what we sent while {self.doing}")
        if 400 <= exc.smtp_code < 500 or exc.smtp_code == -1:
            self.forget()
            return RelayUnavailable(f"{self.where} deferred {what}: {reply}.", hint=_LATER)
        if 500 <= exc.smtp_code < 600 and isinstance(
            exc, smtplib.SMTPSenderRefused | smtplib.SMTPDataError
        ):
            return RelayRejected(f"{self.where} refused {what}: {reply}.")
        self.forget()
        return RelayError(f"{self.where} refused {what}: {reply}.")

    def malformed(self, exc: BaseException) -> RelayError:  # smtplib raises none of these
        return self.refused(exc)

    def out_of_step(self, exc: BaseException) -> RelayError:  # smtplib raises none of these
        return self.closed(exc)

    def closed(self, exc: BaseException) -> RelayError:
        said = f": {exc}" if str(exc) else ""
        return RelayUnavailable(
            f"{self.where} closed the connection while {self.doing}{said}.", hint=_LATER
        )

    def certificate(self, exc: BaseException) -> RelayError:
        # Not transient: retrying cannot make a certificate verify.
        return RelayError(
            f"{self.where}: the TLS certificate for {self.host} did not verify "
            f"({getattr(exc, 'verify_message', None) or exc}).",
            hint="Set ca_file to the CA that signed the server's certificate, or "
            "tls_verify = false if you accept an unverified connection.",
        )

    def tls(self, exc: BaseException) -> RelayError:
        return RelayUnavailable(f"{self.where}: TLS failed while {self.doing}: {exc}.")

    def timeout(self, exc: BaseException) -> RelayError:
        return RelayUnavailable(
            f"{self.where} did not answer within {self.seconds:g} s while {self.doing}.",
            hint=_LATER,
        )

    def network(self, exc: BaseException) -> RelayError:
        return RelayUnavailable(
            f"Cannot talk to {self.where} while {self.doing}: {exc}.",
            hint="Check the host, the port and the network; syncer will try again later.",
        )
