"""Outgoing messages built from archived ones: redirect, attach, the loop marker.

Why a module of its own: what a forward sends must be exact -- in redirect
mode the original bytes, unchanged, after a block of prepended headers -- and
that is easiest to get right (and to test) as pure functions over bytes, away
from SMTP and the archive. Nothing here does I/O.

* :func:`redirect`: ``Resent-Date``, ``Resent-From``, ``Resent-To``,
  ``Resent-Message-ID`` (:rfc:`5322#section-3.6.6`) and the marker prepended to
  the original bytes, which are otherwise untouched (their line ends made CRLF,
  as SMTP requires).
* :func:`attach`: a new ``multipart/mixed`` message from the rule's sender
  with a short note and the original as a ``message/rfc822`` part, byte for
  byte (no re-encoding: the part is 7bit or 8bit as the original is).
* :data:`MARKER` (``X-Syncer-Forwarded: <rule>``) is on everything a forward
  sends, and :func:`forwarded_by_syncer` finds it in an archived message, so a
  forwarded message that comes back into the archive is never forwarded again.
  Both modes also say ``Auto-Submitted`` (:rfc:`3834`) where they may: attach
  sets ``auto-forwarded``; redirect leaves the original's headers alone.

Public API: :class:`Composed`, :func:`redirect`, :func:`attach`,
:func:`forwarded_by_syncer`, :func:`new_message_id`, :func:`header_block`, :data:`MARKER`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid, parseaddr

from syncer.smtp.client import to_crlf

__all__ = [
    "MARKER",
    "Composed",
    "attach",
    "forwarded_by_syncer",
    "header_block",
    "new_message_id",
    "redirect",
]

#: The header on every message a forward sends; its value is the rule's name.
MARKER = "X-Syncer-Forwarded"
_MARKER_LINE = re.compile(rb"^" + MARKER.encode() + rb"[ \t]*:", re.IGNORECASE | re.MULTILINE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_LONG_LINE = 998  # octets, without CRLF (RFC 5322 section 2.1.1)


@dataclass(frozen=True, slots=True)
class Composed:
    """A message ready for the outbox: its bytes and the Message-ID it carries."""

    data: bytes
    message_id: str


def new_message_id(sender: str) -> str:
    """A fresh ``<...@domain>`` Message-ID in the sender's domain."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "syncer.invalid"
    return make_msgid(idstring="syncer", domain=domain)


def header_block(headers: Sequence[tuple[str, str]]) -> bytes:
    """Header fields as they go on the wire (folded, RFC 2047-encoded where needed),
    each ending with CRLF, no blank line after them.

    :raises ValueError: for a value with a line break (a header injection attempt).
    """
    message = EmailMessage(policy=SMTP)
    for name, value in headers:
        message[name] = value
    head, _blank, _body = message.as_bytes().partition(b"\r\n\r\n")
    return head + b"\r\n"


def forwarded_by_syncer(raw: bytes) -> bool:
    """True when the header block of ``raw`` carries :data:`MARKER` (any rule)."""
    end = _HEADER_END.search(raw)
    head = raw[: end.start() + 1] if end else raw
    return _MARKER_LINE.search(head) is not None


def redirect(
    raw: bytes, *, resent_from: str, resent_to: Sequence[str], rule: str, now: datetime
) -> Composed:
    """The original message, resent: new headers on top, its own bytes unchanged below."""
    message_id = new_message_id(resent_from)
    block = header_block(
        [
            ("Resent-Date", format_datetime(now)),
            ("Resent-From", resent_from),
            ("Resent-To", ", ".join(resent_to)),
            ("Resent-Message-ID", message_id),
            (MARKER, rule),
        ]
    )
    return Composed(block + to_crlf(raw), message_id)


def attach(
    raw: bytes,
    *,
    sender: str,
    to: Sequence[str],
    subject: str,
    note: str,
    rule: str,
    now: datetime,
) -> Composed:
    """A new message from ``sender`` with ``note`` as text and ``raw`` attached whole."""
    body = to_crlf(raw)
    boundary = _boundary(body)
    message_id = new_message_id(sender)
    head = header_block(
        [
            ("From", sender),
            ("To", ", ".join(to)),
            ("Subject", subject),
            ("Date", format_datetime(now)),
            ("Message-ID", message_id),
            ("MIME-Version", "1.0"),
            ("Auto-Submitted", "auto-forwarded"),
            (MARKER, rule),
            ("Content-Type", f'multipart/mixed; boundary="{boundary}"'),
        ]
    )
    text = to_crlf(note.encode("utf-8")).rstrip(b"\r\n") + b"\r\n"
    parts = [
        head,
        b"\r\n",
        b"This is a forwarded message in MIME format.\r\n",
        f"--{boundary}\r\n".encode(),
        b'Content-Type: text/plain; charset="utf-8"\r\n',
        f"Content-Transfer-Encoding: {'7bit' if text.isascii() else '8bit'}\r\n".encode(),
        b"\r\n",
        text,
        f"--{boundary}\r\n".encode(),
        b"Content-Type: message/rfc822\r\n",
        b'Content-Disposition: attachment; filename="forwarded.eml"\r\n',
        f"Content-Transfer-Encoding: {_encoding(body)}\r\n".encode(),
        b"\r\n",
        body,
        # The CRLF before a delimiter belongs to the delimiter (RFC 2046 section 5.1.1),
        # so the original keeps its own last line end.
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    return Composed(b"".join(parts), message_id)


def _boundary(body: bytes) -> str:
    while True:
        boundary = f"=_syncer_{secrets.token_hex(12)}"
        if boundary.encode() not in body:
            return boundary


def _encoding(body: bytes) -> str:
    """The Content-Transfer-Encoding that describes ``body`` as it is (RFC 2046 allows
    only identity encodings for message/rfc822)."""
    long_lines = any(len(line) > _LONG_LINE for line in body.split(b"\r\n"))
    if b"\x00" in body or long_lines:
        return "binary"
    return "7bit" if body.isascii() else "8bit"
