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

from syncer.errors import RelayError
from syncer.oauth.sasl import (
    BearerRefused,
    Exchange,
    NoMechanism,
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
    where: str,
    login_name: str,
) -> None:
    """Sign in with an access token, once more with a refreshed one when refused.

    :param where: the server as messages name it; ``login_name`` what to pass to
        ``syncer auth login`` in the hint.
    :raises RelayError: when the server offers neither mechanism or refuses the refreshed token.
    :raises smtplib.SMTPAuthenticationError: for a 4xx answer (the caller's mapping: transient).
    """
    try:
        mechanism = choose_mechanism(offered, wanted)
    except NoMechanism as exc:
        raise RelayError(
            f"{where}: {exc}.",
            hint='Set mechanism = "xoauth2" or "oauthbearer" in the oauth2 table if the '
            "server supports one without announcing it (often only after STARTTLS).",
        ) from exc

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

    try:
        sign_in(tokens, attempt)
    except BearerRefused as exc:
        raise RelayError(
            f"{where} refused the OAuth2 access token of {username!r} ({exc.mechanism}), "
            "also a freshly refreshed one.",
            hint=f"Run `syncer auth login {login_name}` to sign in again (and check the "
            f"username and the scopes). The server said: {exc.detail}",
        ) from exc
