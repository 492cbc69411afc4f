"""The configuration files syncer ships: the full example and a starter per provider.

Why in the package: a user who ran ``pipx install syncer-mail`` has no checkout to copy
``config/...`` from; ``syncer config example`` prints the documented example (the one
source, ``examples/syncer.example.toml`` beside this module) and ``syncer config init``
writes a short starter for one provider.

Public API: :data:`PROVIDERS`, :func:`example_text`, :func:`starter_text`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class _Provider:
    """What differs between providers in a starter: server, sign-in, folders to skip."""

    host: str
    username: str
    sign_in: str
    exclude: tuple[str, ...]
    note: str


_PASSWORD = """\
# The password is never written here: exactly one of these.
password_env = "SYNCER_MAIL_PASSWORD"
# password_file = "~/.config/syncer/mail-password"   # first line; keep it mode 0600
# password_command = ["pass", "mail/work"]"""

_OAUTH2 = """\
# {label} signs in with OAuth2: register a client ({where}), put its id here,
# then run `syncer auth login mail` once; syncer refreshes the token from then on.
auth = "oauth2"

[accounts.oauth2]
provider = "{provider}"
client_id = "REPLACE-WITH-YOUR-CLIENT-ID"
# Only for a confidential client; a public client has no secret.
# client_secret_env = "SYNCER_OAUTH_CLIENT_SECRET"
# device: a code to type on any device | browser: a browser on this machine
flow = "{flow}\""""

#: ``--provider`` name -> what its starter says.
PROVIDERS: dict[str, _Provider] = {
    "generic": _Provider(
        host="imap.example.com",
        username="me@example.com",
        sign_in=_PASSWORD,
        exclude=("Trash", "Junk", "Spam"),
        note='Any IMAP server; for POP3 set protocol = "pop3" (see `syncer config example`).',
    ),
    "gmail": _Provider(
        host="imap.gmail.com",
        username="me@gmail.com",
        sign_in=_OAUTH2.format(
            label="Gmail",
            where='Google Cloud console, "Desktop app"',
            provider="google",
            flow="browser",
        ),
        # "All Mail" holds every message again; Spam and Trash are rarely wanted.
        exclude=("[Gmail]/All Mail", "[Gmail]/Spam", "[Gmail]/Trash"),
        note="Gmail: labels are folders; a message with two labels is stored once.",
    ),
    "microsoft": _Provider(
        host="outlook.office365.com",
        username="me@example.onmicrosoft.com",
        sign_in=_OAUTH2.format(
            label="Microsoft 365",
            where="Entra ID app registration, public client",
            provider="microsoft",
            flow="device",
        ),
        exclude=("Deleted Items", "Junk Email"),
        note="Microsoft 365 / Outlook.com over IMAP.",
    ),
}

_STARTER = """\
# syncer configuration: a starter for {provider} (`syncer config init --provider {provider}`).
# {note}
# Every key is explained in the full example: `syncer config example | less`.
# Check this file with `syncer config check --connect`, preview with `syncer sync --dry-run`.

[archive]
# One SQLite file beside this file; it is created by the first `syncer sync`.
url = "sqlite:///archive.db"

[[accounts]]
# The name used on the command line (`syncer sync mail`) and in the archive.
name = "mail"
protocol = "imap"
host = "{host}"
username = "{username}"
# tls (port 993) | starttls (143) | plain (only on a trusted network, with allow_insecure = true)
security = "tls"
# port = 993
# allow_insecure = false
{sign_in}

[accounts.folders]
# Glob patterns over folder names as people read them ("Archive/*").
include = ["*"]
exclude = [{exclude}]

# `syncer run` syncs every 15 minutes by default; alerting when it stops:
# [monitoring]
# ping_url = "https://hc-ping.com/your-uuid"
"""


def example_text() -> str:
    """The full, commented example configuration shipped in the package."""
    return (
        resources.files("syncer.config")
        .joinpath("examples/syncer.example.toml")
        .read_text(encoding="utf-8")
    )


def starter_text(provider: str) -> str:
    """A short commented configuration for ``provider`` (a key of :data:`PROVIDERS`)."""
    spec = PROVIDERS[provider]
    # The OAuth2 table must follow every plain key of the account, so the folder table
    # (also a sub-table) comes after it either way.
    return _STARTER.format(
        provider=provider,
        note=spec.note,
        host=spec.host,
        username=spec.username,
        sign_in=spec.sign_in,
        exclude=", ".join(f'"{name}"' for name in spec.exclude),
    )
