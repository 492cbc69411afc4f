"""Plain values that cross layer boundaries: adapters produce them, the archive stores them.

Nothing here knows about SQLAlchemy or any protocol library, so adapters,
the archive and the pipeline can all share these types without importing
each other.

Terminology:

* *folder name*: the name exactly as the protocol spells it (for IMAP the
  modified UTF-7 wire form, e.g. ``&ANw-berweisungen``). It is the key.
* *display name*: the name people see, the same on every server: within the
  personal namespace (``INBOX.`` prefixes off), ``/`` between levels, decoded
  (``INBOX.&ANw-berweisungen`` -> ``Überweisungen``); see
  :mod:`syncer.sources.folder_names`. Globs, ``folder:`` and export use it.
* *uid*: an IMAP UID, meaningful only together with the folder's UIDVALIDITY.
* *uidl*: a POP3 unique-id listing value, meaningful per account.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class FolderStatus:
    """A folder as the server lists it, with its STATUS when it could be had.

    :ivar special_use: RFC 6154 attribute such as ``\\Sent``, or None.
    :ivar namespace: ``personal``, ``other`` or ``shared``.
    """

    name: str
    display_name: str
    delimiter: str | None
    namespace: str = "personal"
    special_use: str | None = None
    selectable: bool = True
    uidvalidity: int | None = None
    uidnext: int | None = None
    highestmodseq: int | None = None
    messages: int | None = None
    mailbox_id: str | None = None
    #: Bytes in the folder (RFC 8438 ``STATUS=SIZE``), where the server says.
    size: int | None = None


@dataclass(frozen=True, slots=True)
class FolderCursor:
    """The sync state the archive keeps for one folder (its high-water mark).

    ``highestmodseq`` is None when the server has no CONDSTORE for the folder.
    ``last_full_scan`` is when the UID set was last reconciled in full.
    """

    uidvalidity: int
    uidnext: int
    highestmodseq: int | None = None
    messages: int = 0
    last_full_scan: datetime | None = None


@dataclass(frozen=True, slots=True)
class SelectedFolder:
    """What SELECT (possibly with QRESYNC) told us about a folder.

    ``vanished`` and ``changed`` are filled only when QRESYNC parameters were
    sent and the server honoured them; ``qresync`` says whether it did.
    """

    name: str
    uidvalidity: int
    uidnext: int
    exists: int
    highestmodseq: int | None
    qresync: bool = False
    # A read-only set: the IMAP adapter keeps VANISHED as ranges, never expanded.
    vanished: AbstractSet[int] = frozenset()
    changed: tuple[FlagState, ...] = ()


@dataclass(frozen=True, slots=True)
class FlagState:
    """The flags of one message on the server, and its MODSEQ when known.

    Flags are kept exactly as the server spells them (``\\Seen``,
    ``$Forwarded``, ``custom``), sorted; ``\\Recent`` is never included.
    """

    uid: int
    flags: tuple[str, ...]
    modseq: int | None = None
    #: Gmail labels (``X-GM-LABELS``), sorted; None where the server has no labels.
    labels: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class RemoteMessage:
    """One message as fetched: the raw bytes are the truth.

    :ivar raw: the exact bytes of ``BODY.PEEK[]`` (IMAP) or RETR (POP3).
    :ivar uid: the IMAP UID; 0 for POP3 (the key is ``uidl`` then).
    :ivar emailid: RFC 8474 EMAILID or Gmail X-GM-MSGID where offered.
    :ivar labels: Gmail labels (``X-GM-LABELS``, decoded, sorted), or None where the
        server has none (every server but Gmail); ``()`` is a Gmail message without labels.
    """

    folder: str
    uid: int
    raw: bytes
    flags: tuple[str, ...] = ()
    internaldate: datetime | None = None
    size: int = 0
    modseq: int | None = None
    emailid: str | None = None
    uidl: str | None = None
    labels: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class MaildropEntry:
    """One message of a POP3 maildrop, as LIST and UIDL describe it.

    :ivar number: the message number; valid for one session only (:rfc:`1939#section-4`).
    :ivar size: the octets LIST reports: the size on the wire, CRLF line ends, before
        dot-stuffing.
    :ivar uidl: the unique-id listing value, or None when the server has no UIDL.
    """

    number: int
    size: int
    uidl: str | None = None


@dataclass(frozen=True, slots=True)
class HeaderFingerprint:
    """A cheap identity for a message, used to recognise bodies already archived
    after a UIDVALIDITY reset without downloading them again.

    ``header_sha256`` is the SHA-256 of ``BODY.PEEK[HEADER]``; ``emailid`` is
    the server's stable message id (RFC 8474 EMAILID, Gmail X-GM-MSGID) where
    offered, which identifies a body better than any header can.
    """

    uid: int
    size: int
    internaldate: datetime | None
    header_sha256: str
    flags: tuple[str, ...] = ()
    modseq: int | None = None
    emailid: str | None = None
    labels: tuple[str, ...] | None = None
    #: The Message-ID in the header (:func:`header_message_id`), where the source read it.
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class MessageIdentity:
    """A message's server-wide id and its metadata, listed without its body.

    ``emailid`` is RFC 8474 EMAILID or Gmail's X-GM-MSGID: the same message in
    two folders (a Gmail label folder and All Mail) has the same one, so a body
    archived from one folder is linked into the other instead of downloaded.
    """

    uid: int
    emailid: str
    flags: tuple[str, ...] = ()
    internaldate: datetime | None = None
    modseq: int | None = None
    labels: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class FolderSummary:
    """What one folder's sync did; the CLI prints these (``--json``)."""

    folder: str
    new: int = 0
    flags_changed: int = 0
    expunged: int = 0
    bytes: int = 0
    seconds: float = 0.0
    skipped: bool = False
    error: str | None = None
    reused: int = 0
    #: What happened to the folder itself on the server since the last sync: "created",
    #: "deleted" or "renamed" (then ``renamed_from`` is its old name); None otherwise.
    change: str | None = None
    renamed_from: str | None = None
    #: Why the folder's download stopped early (``"budget"``: the daily byte budget);
    #: the next run resumes after its last committed batch.
    stopped: str | None = None


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What one account's sync did."""

    account: str
    run_id: str
    ok: bool
    folders: tuple[FolderSummary, ...] = ()
    error: str | None = None
    seconds: float = 0.0
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def new(self) -> int:
        return sum(f.new for f in self.folders)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.folders)


# Header blocks longer than this are rare; looking here first keeps the search off the body.
_HEADER_WINDOW = 64 * 1024


def header_end(raw: bytes) -> int:
    """Length of the header block: up to and including the first empty line.

    That is exactly what IMAP ``BODY[HEADER]`` returns (:rfc:`3501#section-6.4.5`).
    Lines may end in CRLF or, in messages from local mbox files, bare LF. A
    message without an empty line is all header.
    """
    if raw.startswith(b"\r\n"):
        return 2
    if raw.startswith(b"\n"):
        return 1
    # Look in the first 64 KB first: a CRLF message never contains "\n\n", so an unbounded
    # search for it would read the whole body (the hot path's biggest waste, measured).
    for limit in (_HEADER_WINDOW, len(raw)):
        crlf = raw.find(b"\n\r\n", 0, limit)
        lf = raw.find(b"\n\n", 0, crlf + 3 if crlf >= 0 else limit)
        if lf >= 0:
            return lf + 2
        if crlf >= 0:
            return crlf + 3
        if limit >= len(raw):
            break
    return len(raw)


# A Message-ID header line and its folded continuation lines (RFC 5322 section 3.6.4).
_MESSAGE_ID = re.compile(rb"^message-id[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
_ANGLE = re.compile(rb"<[^<>\s]*>")
_MAX_MESSAGE_ID = 998  # the longest line RFC 5322 allows


def header_message_id(raw: bytes, end: int | None = None) -> str | None:
    """The Message-ID in the header block of ``raw`` (``<id>``), without a MIME parse.

    One small bytes regex over the first ``end`` bytes (the header block when None):
    the archive's hot path records it this way, and push recognises a message a
    server stored with other bytes by it (issue 20 #9).
    """
    match = _MESSAGE_ID.search(raw, 0, header_end(raw) if end is None else end)
    if match is None:
        return None
    value = match.group(1)
    angle = _ANGLE.search(value)
    token = angle.group(0) if angle else b" ".join(value.split())
    if not token:
        return None
    return token[:_MAX_MESSAGE_ID].decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One message found by a search (``ArchiveStore.search``), once however many folders hold it.

    :ivar id: ``messages.id``, what ``syncer show`` takes.
    :ivar date: the Date header in UTC, or None.
    :ivar sender: the first From address as people read it, or None.
    :ivar folders: display names of the folders the message is or was in, sorted.
    :ivar snippet: a line of its text around the first match, matches marked ``[[...]]``.
    """

    id: int
    sha256: str
    date: datetime | None
    sender: str | None
    subject: str | None
    size: int
    folders: tuple[str, ...]
    snippet: str
