"""``provider = "gmail" | "microsoft"``: defaults that keep an account within its provider's limits.

Why: Gmail and Microsoft 365 differ from a plain IMAP server in ways that cost
data or days (issue 21, docs/servers.md). A preset fills in only the keys the
account's table leaves out, so anything written explicitly wins:

* where to connect: ``host``, ``port``, ``security``; with ``auth = "oauth2"``,
  the OAuth2 ``provider`` (``google``/``microsoft``) unless given;
* which folders: Gmail syncs ``[Gmail]/All Mail`` (SPECIAL-USE ``\\All``) first,
  every label folder after it (linked by X-GM-MSGID, no second download), and leaves
  out Spam, Trash, Important and Starred by SPECIAL-USE (``\\Junk``, ``\\Trash``,
  ``\\Important``, ``\\Flagged``: the names are localized, the attributes are not);
  Microsoft 365 leaves out Junk by SPECIAL-USE and the non-mail folders Exchange lists
  (calendar, contacts, tasks, sync issues) by their English names;
* how much at once: ``batch_messages`` and ``batch_bytes`` small enough that one
  FETCH stays far from the providers' per-command limits, and for Gmail a
  ``max_bytes_per_day`` just under its 2.5 GB daily IMAP download cap. syncer opens
  one IMAP connection per account, below both providers' connection limits
  (Gmail 15 per account, Microsoft 365 about 20 per mailbox).

Public API: :data:`PRESETS`, :func:`apply_preset`.
"""

from __future__ import annotations

from typing import Any, Literal

Provider = Literal["gmail", "microsoft"]

#: Gmail allows about 2.5 GB of IMAP downloads per account and day; stay just under.
GMAIL_BYTES_PER_DAY = 2_400_000_000

PRESETS: dict[str, dict[str, Any]] = {
    "gmail": {
        "host": "imap.gmail.com",
        "port": 993,
        "security": "tls",
        "oauth2_provider": "google",
        "folders": {
            "include": ["*"],
            "exclude": [],
            "exclude_special_use": ["\\Junk", "\\Trash", "\\Important", "\\Flagged"],
        },
        "batch_messages": 200,
        "batch_bytes": 16 * 1024 * 1024,
        "max_bytes_per_day": GMAIL_BYTES_PER_DAY,
    },
    "microsoft": {
        "host": "outlook.office365.com",
        "port": 993,
        "security": "tls",
        "oauth2_provider": "microsoft",
        "folders": {
            "include": ["*"],
            "exclude": [
                "Calendar",
                "Calendar/*",
                "Contacts",
                "Contacts/*",
                "Tasks",
                "Notes",
                "Journal",
                "Sync Issues",
                "Sync Issues/*",
                "Conversation History",
            ],
            "exclude_special_use": ["\\Junk"],
        },
        "batch_messages": 100,
        "batch_bytes": 8 * 1024 * 1024,
    },
}


def apply_preset(data: dict[str, Any]) -> dict[str, Any]:
    """The account table ``data`` with its provider's defaults filled in where absent.

    Unknown providers are left for validation to report (the field is a Literal).
    """
    preset = PRESETS.get(str(data.get("provider")))
    if preset is None or data.get("protocol", "imap") != "imap":
        return data  # the presets describe IMAP; POP3 is configured by hand
    filled = dict(data)
    for key, value in preset.items():
        if key == "oauth2_provider":
            oauth2 = filled.get("oauth2")
            if isinstance(oauth2, dict) and "provider" not in oauth2:
                filled["oauth2"] = {**oauth2, "provider": value}
        elif key == "folders":
            given = filled.get("folders")
            if isinstance(given, dict):
                filled["folders"] = {**value, **given}
            elif given is None:
                filled["folders"] = dict(value)
        else:
            filled.setdefault(key, value)
    return filled
