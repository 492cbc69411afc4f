"""What syncer knows about Google's and Microsoft's authorization servers.

Why it is data: the endpoints, the scopes that grant IMAP/POP3/SMTP access and
the quirks (Google hands out a refresh token only with ``access_type=offline``
and, on a repeated consent, ``prompt=consent``; Google's device flow does not
allow the mail scope, so its sign-in is the browser flow) change rarely and
are the same for every user. A ``generic`` provider gives its own URLs.

Public API: :class:`Provider`, :data:`PROVIDERS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Flow = Literal["device", "browser"]
Protocol = Literal["imap", "pop3", "smtp"]


@dataclass(frozen=True, slots=True)
class Provider:
    token_url: str | None = None
    authorize_url: str | None = None
    device_authorization_url: str | None = None
    #: The default scopes per protocol.
    scopes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: The sign-in flow used unless the configuration says ``flow``.
    flow: Flow | None = None
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    #: The host of the loopback redirect URI (Microsoft registers ``http://localhost``).
    redirect_host: str = "127.0.0.1"


_GMAIL = ("https://mail.google.com/",)
_MS = "https://login.microsoftonline.com/common/oauth2/v2.0"
_OUTLOOK = "https://outlook.office.com"

PROVIDERS: dict[str, Provider] = {
    "google": Provider(
        token_url="https://oauth2.googleapis.com/token",
        authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
        device_authorization_url="https://oauth2.googleapis.com/device/code",
        scopes={"imap": _GMAIL, "pop3": _GMAIL, "smtp": _GMAIL},
        flow="browser",
        authorize_params={"access_type": "offline", "prompt": "consent"},
    ),
    "microsoft": Provider(
        token_url=f"{_MS}/token",
        authorize_url=f"{_MS}/authorize",
        device_authorization_url=f"{_MS}/devicecode",
        # offline_access: without it Microsoft issues no refresh token.
        scopes={
            "imap": (f"{_OUTLOOK}/IMAP.AccessAsUser.All", "offline_access"),
            "pop3": (f"{_OUTLOOK}/POP.AccessAsUser.All", "offline_access"),
            "smtp": (f"{_OUTLOOK}/SMTP.Send", "offline_access"),
        },
        flow="device",
        redirect_host="localhost",
    ),
    "generic": Provider(),
}
