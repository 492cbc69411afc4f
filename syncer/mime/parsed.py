"""Plain values of a normalized message, as :func:`syncer.mime.normalize.normalize` derives them.

Why this module exists: the normalizer (pure, no database) produces these values
and the archive (:mod:`syncer.archive.store_normalize`) stores them; both
import this module and neither imports the other, as with :mod:`syncer.model`.
It holds no logic beyond a few derived properties and depends on the standard
library only.

Terminology:

* *part path*: a MIME part's number as IMAP ``BODY[...]`` spells it
  (:rfc:`3501#section-6.4.5`): ``1`` is the body of a single-part message,
  ``2.1`` the first part inside the second part, and the parts of a forwarded
  ``message/rfc822`` at ``3`` are ``3.1``, ``3.2`` ...
* *verdict*: an Authentication-Results result keyword (:rfc:`8601#section-2.7`):
  ``pass``, ``fail``, ``softfail``, ``neutral``, ``none``, ``temperror``,
  ``permerror``, ``policy`` ...

:data:`NORMALIZER_VERSION` is stored with every normalized message; raising it
makes the archive re-derive every message (``syncer normalize`` after an upgrade).
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Bump when the normalizer derives anything differently; older rows are then re-derived.
#: 2: text extracted from attachments (for the search index).
NORMALIZER_VERSION = 2

#: Address roles, in the order they are stored and shown.
ROLES = ("from", "sender", "reply-to", "to", "cc", "bcc", "delivered-to")


#: Per class: an attrgetter of its fields in ``__init__`` order (see :func:`_reduced`).
_FIELD_GETTERS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def _reduced(value: Any) -> tuple[type, tuple[Any, ...]]:
    """What ``pickle`` stores for one of these values: its class and its fields, in order.

    Why: normalization's pool processes send every result to the saving process;
    a frozen slots dataclass pickles through ``__getstate__``/``__setstate__``,
    which walk ``dataclasses.fields()`` for each object on both sides (about a
    quarter of the pickling; docs/performance.md, "Normalize stage CPU").
    Unpickling calls the class with the same values, which builds an equal object.
    """
    cls = type(value)
    getter = _FIELD_GETTERS.get(cls)
    if getter is None:  # every class here has several fields: attrgetter gives a tuple
        getter = _FIELD_GETTERS[cls] = operator.attrgetter(*cls.__match_args__)
    return cls, getter(value)


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox named in an address header.

    :ivar address: ``local@domain`` with the domain lower-cased and in its ASCII
        (IDNA) form, so one mailbox has one spelling; the local part is kept as
        written (it is case-sensitive, :rfc:`5321#section-2.4`). None for a
        display name without any address.
    :ivar domain: the domain for people: lower-cased, IDNA labels decoded
        (``bücher.example`` for ``xn--bcher-kva.example``); None without a domain.
    """

    role: str
    position: int
    display_name: str | None
    address: str | None
    domain: str | None = None

    @property
    def display_address(self) -> str | None:
        """The address with its domain as people read it."""
        if self.address is None or self.domain is None or "@" not in self.address:
            return self.address
        return f"{self.address.rsplit('@', 1)[0]}@{self.domain}"

    def __str__(self) -> str:
        shown = self.display_address or ""
        if self.display_name:
            return f"{self.display_name} <{shown}>" if shown else self.display_name
        return shown

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        return _reduced(self)


@dataclass(frozen=True, slots=True)
class Attachment:
    """A MIME leaf (or forwarded message) that is not the message's text.

    :ivar filename: the name as the sender wrote it (RFC 2231 and RFC 2047 forms
        decoded), or None.
    :ivar safe_filename: a name safe to create in any folder: no path
        separators, control or reserved characters, no leading dot, at most 200
        bytes; derived from the part path when the mail gives no name.
    :ivar size: bytes after the transfer encoding (base64, quoted-printable) is undone.
    :ivar sha256: SHA-256 of exactly those bytes.
    :ivar inline: shown inside the message (``Content-Disposition: inline``, or a
        Content-ID referenced by HTML) rather than offered as a file.
    """

    part_path: str
    filename: str | None
    safe_filename: str
    content_type: str
    disposition: str | None
    size: int
    sha256: str
    inline: bool
    content_id: str | None = None

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        return _reduced(self)


@dataclass(frozen=True, slots=True)
class AttachmentText:
    """The text of an attachment, for search (:mod:`syncer.mime.attachments` extracts it).

    :ivar note: why the text is missing or cut short (too large, timed out,
        unreadable); None when it is whole.
    """

    part_path: str
    text: str
    note: str | None = None

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        return _reduced(self)


@dataclass(frozen=True, slots=True)
class AuthResults:
    """The receiving server's Authentication-Results, reduced to one verdict per method.

    :ivar authserv_id: who wrote the header (the receiving server), or None.
    :ivar raw: the header value the verdicts were read from.
    """

    spf: str | None = None
    dkim: str | None = None
    dmarc: str | None = None
    authserv_id: str | None = None
    raw: str | None = None

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        return _reduced(self)


@dataclass(frozen=True, slots=True)
class NormalizedMessage:
    """Everything derived from one raw message.

    :ivar status: ``ok``; ``partial`` when some part of the message could not
        be read (``error`` says which); ``failed`` when not even the MIME
        structure could (only the header fields are filled then).
    :ivar defects: the names of the RFC violations the parser recovered from
        (``CloseBoundaryNotFoundDefect`` ...), sorted; the message was still read.
    :ivar date: the Date header in UTC, or None (``date_status`` says why).
    :ivar date_status: ``ok``; ``nonstandard`` (not RFC 5322 but unambiguous,
        e.g. ISO 8601); ``invalid`` (``date_raw`` holds what was there);
        ``missing``.
    :ivar references: Message-IDs of the References header, oldest first.
    :ivar text: the text to search: text/plain parts (text/plain preferred in
        multipart/alternative), HTML converted to text, forwarded messages' text;
        nothing of encrypted content.
    :ivar thread_key: the same for every message of a thread (derived from the
        thread's root Message-ID, so a message whose parent is missing still
        gets a stable one).
    :ivar dkim_verified: the archive's own DKIM check (``pass``, ``fail``,
        ``none`` without a signature, ``temperror``/``permerror``), or None
        when not checked.
    :ivar security: how the message is signed or encrypted: a comma-separated
        set of ``smime``, ``pgp-mime``, ``pgp-inline``; None when neither.
    :ivar risk: notes for phishing triage, strongest first; ``suspicious`` is
        true when any of them is a strong signal.
    """

    version: int
    status: str
    error: str | None = None
    defects: tuple[str, ...] = ()
    message_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    subject: str | None = None
    date: datetime | None = None
    date_raw: str | None = None
    date_status: str = "missing"
    list_id: str | None = None
    auto_submitted: str | None = None
    precedence: str | None = None
    addresses: tuple[Address, ...] = ()
    text: str = ""
    attachments: tuple[Attachment, ...] = ()
    attachment_texts: tuple[AttachmentText, ...] = ()
    thread_key: str | None = None
    auth: AuthResults = field(default_factory=AuthResults)
    dkim_verified: str | None = None
    signed: bool = False
    encrypted: bool = False
    security: str | None = None
    suspicious: bool = False
    risk: tuple[str, ...] = ()

    @property
    def has_attachments(self) -> bool:
        """True when a part is offered as a file (inline images and signatures aside)."""
        return any(
            not a.inline and a.content_type not in _SIGNATURE_TYPES for a in self.attachments
        )

    @property
    def risk_note(self) -> str | None:
        return "; ".join(self.risk) or None

    @property
    def sender(self) -> str | None:
        """The first From address (as people read it), or None."""
        for address in self.addresses:
            if address.role == "from":
                return str(address) or None
        return None

    def by_role(self, role: str) -> tuple[Address, ...]:
        return tuple(a for a in self.addresses if a.role == role)

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        return _reduced(self)


def thread_key_of(root: str | bytes) -> str:
    """The thread key of a thread rooted at Message-ID ``root`` (or at raw bytes without ids).

    Normalizer and archive both compute it: the archive to find the messages
    that rooted a thread at a message it has just normalized.
    """
    data = root.encode("utf-8", "surrogatepass") if isinstance(root, str) else root
    return hashlib.sha256(data).hexdigest()[:32]


#: Detached signatures: parts of a signed message, not files the sender attached.
_SIGNATURE_TYPES = frozenset(
    {"application/pgp-signature", "application/pkcs7-signature", "application/x-pkcs7-signature"}
)
