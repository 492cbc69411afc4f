"""The readable bodies of a message: its first text/plain and text/html parts.

Why this module exists: the normalized text in the archive is what search needs
(HTML flattened, attachments' text added); a person reading the message in the
web archive wants the parts themselves, the plain text as written and the HTML
to be sanitized and shown. Parts that are attachments are skipped. Pure: bytes
in, strings out; nothing here decides what is safe to show
(:mod:`syncer.web.mailview` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser

__all__ = ["Bodies", "bodies"]

#: Longest body returned, in characters (a hostile message can be hundreds of megabytes).
MAX_CHARS = 2_000_000


@dataclass(frozen=True, slots=True)
class Bodies:
    """The first plain-text and the first HTML body part, decoded, or None."""

    text: str | None
    html: str | None


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")[:MAX_CHARS]
    except LookupError:  # an unknown charset name
        return payload.decode("utf-8", errors="replace")[:MAX_CHARS]


def bodies(raw: bytes) -> Bodies:
    """The readable bodies of ``raw``; a message that does not parse gives (None, None)."""
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception:
        return Bodies(None, None)
    text: str | None = None
    html: str | None = None
    parts = msg.walk() if isinstance(msg, EmailMessage) else iter(())
    for part in parts:
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        kind = part.get_content_type()
        if kind == "text/plain" and text is None:
            text = _decoded(part)
        elif kind == "text/html" and html is None:
            html = _decoded(part)
    return Bodies(text, html)
