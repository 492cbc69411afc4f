"""OAuth2 sign-in for the SMTP client: ``AUTH XOAUTH2`` / ``AUTH OAUTHBEARER`` through smtplib.

Kept apart from :mod:`syncer.smtp.client` so the password path there stays as it
is; :meth:`SMTPRelay._authenticate` hands over here when the settings carry a
token provider. The messages come from :mod:`syncer.oauth.sasl`; smtplib's
``auth()`` sends the initial response on the AUTH line (:rfc:`4954`) and calls
the exchange again for the error challenge a server sends before ``535``.

Public API (private to ``syncer.relay``): :func:`bearer_login`.
"""

from __future__ import annotations

import smtplib

from syncer.oauth.sasl import (
    BearerRefused,
    Exchange,
    TokenProvider,
    choose_mechanism,
    initial_response,
    sign_in,
)


def bearer_login(
    client: smtplib.SMTP,
    *,
    host: str,
    port: int,
    username: str,
    tokens: TokenProvider,
    wanted: str,
    offered: list[str],
) -> None:
    """Sign in with an access token, once more with a refreshed one when refused.

    :raises NoMechanism: when the server offers neither mechanism, and
    :raises BearerRefused: when it refuses the refreshed token (the caller's mapping
        words both, :class:`syncer.smtp.errors.SMTPWording`).
    :raises smtplib.SMTPAuthenticationError: for a 4xx answer (the caller's mapping: transient).
    """
    mechanism = choose_mechanism(offered, wanted)

    def attempt(token: str) -> None:
        exchange = Exchange(mechanism, initial_response(mechanism, username, token, host, port))
        try:
            client.auth(
                mechanism,
                lambda challenge=None: exchange(challenge).decode("ascii"),
                initial_response_ok=True,
            )
        except smtplib.SMTPAuthenticationError as exc:
            if 400 <= exc.smtp_code < 500:
                raise
            error = exc.smtp_error
            said = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
            raise BearerRefused(mechanism, exchange.error or f"{exc.smtp_code} {said}") from exc

    sign_in(tokens, attempt)
