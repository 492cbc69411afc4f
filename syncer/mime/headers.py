"""Header fields for the normalizer: addresses, Message-IDs, dates, list and bulk markers.

Why this module exists: it turns raw header values (as the email parser kept
them, 8-bit bytes and RFC 2047 words undecoded) into the plain values of
:mod:`syncer.mime.parsed`, leniently: a header that cannot be read yields None or
nothing, never an exception. The message structure is left to
:mod:`syncer.mime.parts`.

Public API: :class:`RawHeaders`, :func:`parse_addresses`, :func:`bare_address`, :func:`parse_date`,
:func:`message_ids`, :func:`first_message_id`, :func:`thread_key`,
:func:`list_id`, :func:`token`.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from syncer.mime.parsed import Address, thread_key_of
from syncer.mime.text import decode_words, header_text, strip_surrogates


class RawHeaders:
    """The header fields of one message or part, by lower-cased name, in order.

    Values are exactly as parsed (folded, 8-bit bytes as surrogate escapes);
    :meth:`text` decodes them. ``hints`` are the charsets declared in the
    message, used for raw 8-bit header bytes that are not UTF-8.
    """

    def __init__(self, msg: Message, hints: Sequence[str] = ()) -> None:
        self.fields: dict[str, list[str]] = {}
        for name, value in msg.raw_items():
            key = strip_surrogates(str(name)).strip().lower()
            self.fields.setdefault(key, []).append(str(value))
        self.hints = tuple(hints)

    def raw(self, name: str) -> list[str]:
        return self.fields.get(name, [])

    def text(self, name: str, *, words: bool = True) -> str | None:
        """The first field called ``name``, decoded, or None when absent."""
        values = self.fields.get(name)
        if not values:
            return None
        return header_text(values[0], self.hints, words=words)

    def texts(self, name: str, *, words: bool = True) -> list[str]:
        return [header_text(v, self.hints, words=words) for v in self.fields.get(name, [])]

    def count(self, name: str) -> int:
        return len(self.fields.get(name, []))


# --------------------------------------------------------------------------- addresses

_ANGLE_ADDR = re.compile(r"<\s*([^<>\s]*)\s*>")
_IDNA_LABEL = "xn--"


def _domains(domain: str) -> tuple[str, str]:
    """(ASCII form, display form) of a domain, both lower-case."""
    domain = domain.strip().strip(".").lower()
    ascii_form = domain
    if not domain.isascii():
        try:
            ascii_form = domain.encode("idna").decode("ascii")
        except UnicodeError:
            ascii_form = domain
    display = ascii_form
    if _IDNA_LABEL in ascii_form:
        labels = []
        for label in ascii_form.split("."):
            if label.startswith(_IDNA_LABEL):
                with contextlib.suppress(UnicodeError):
                    label = label.encode("ascii").decode("idna")
            labels.append(label)
        display = ".".join(labels)
    elif not domain.isascii():
        display = domain
    return ascii_form, display


def _clean_name(name: str, hints: Sequence[str]) -> str | None:
    name = decode_words(name, hints).strip()
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "\"'":
        name = name[1:-1].strip()
    name = name.replace('\\"', '"')
    return name or None


def bare_address(value: str | None) -> str | None:
    """The address of a header such as Return-Path (``<a@b>``, ``a@b``); None for ``<>``."""
    if not value:
        return None
    match = _ANGLE_ADDR.search(value)
    found = match.group(1) if match else value.split()[0]
    return found.strip("<>") or None


@functools.lru_cache(maxsize=4096)
def _name_address_pairs(text: str) -> tuple[tuple[str, str], ...]:
    """The stdlib's (name, address) pairs of one header text; cached, as the same
    correspondents' headers recur across a mailbox and this is a pure function of the text.
    """
    try:
        return tuple(getaddresses([text]))
    except Exception:  # the stdlib's parser, on pathological input
        return tuple(("", m) for m in re.findall(r"[^\s<>,;:\"]+@[^\s<>,;:\"]+", text))


def parse_addresses(role: str, values: Iterable[str], hints: Sequence[str] = ()) -> list[Address]:
    """The mailboxes in the header values of one role, in order.

    Groups are flattened; ``undisclosed-recipients:;`` yields nothing; an
    unquoted comma inside a display name (``Doe, John <j@x>``) is put back.
    """
    pairs: list[tuple[str, str]] = []
    for value in values:
        text = header_text(value, hints, words=False)
        if not text:
            continue
        pairs.extend(_name_address_pairs(text))
    merged: list[tuple[str, str]] = []
    for name, addr in pairs:
        if merged and not merged[-1][0] and "@" not in merged[-1][1] and merged[-1][1] and name:
            # getaddresses split "Doe, John <j@x>" into ('', 'Doe') and ('John', 'j@x').
            name = f"{merged.pop()[1]}, {name}"
        merged.append((name, addr))
    result: list[Address] = []
    for name, addr in merged:
        addr = addr.strip().strip("<>").strip()
        if addr.endswith((":", ";")) or addr in ("", ":;"):
            addr = ""
        display = _clean_name(name, hints)
        if not addr and not display:
            continue
        address: str | None = addr or None
        domain: str | None = None
        if addr and "@" in addr:
            local, _, dom = addr.rpartition("@")
            ascii_dom, domain = _domains(dom)
            address = f"{local}@{ascii_dom}"
        result.append(Address(role, len(result), display, address, domain))
    return result


# --------------------------------------------------------------------------- Message-IDs

_MSGID = re.compile(r"<([^<>]{1,990})>")


def message_ids(value: str | None) -> tuple[str, ...]:
    """Every Message-ID in a header value, as ``<id>``, in order, without repeats.

    Ids without angle brackets (seen from old mailers) are taken when they
    contain an ``@``.
    """
    if not value:
        return ()
    found = ["<" + "".join(m.split()) + ">" for m in _MSGID.findall(value)]
    if not found:
        found = [f"<{word.strip('<>')}>" for word in value.split() if "@" in word]
    return tuple(dict.fromkeys(found))


def first_message_id(value: str | None) -> str | None:
    ids = message_ids(value)
    return ids[0] if ids else None


def thread_key(
    message_id: str | None, in_reply_to: str | None, references: Sequence[str], raw: bytes
) -> str:
    """A stable key shared by the messages of one thread.

    The thread's root is the first Message-ID of References (clients keep the
    first one when they shorten the list, :rfc:`5322#section-3.6.4`), else the
    In-Reply-To parent, else the message itself. The key is a hash of that
    root, so a reply whose parent was never archived still groups with its
    siblings; a message without any id is a thread of its own.
    """
    root = references[0] if references else in_reply_to or message_id
    return thread_key_of(root if root else raw)


# --------------------------------------------------------------------------- dates

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_date(value: str | None) -> tuple[datetime | None, str]:
    """(the date in UTC, status) of a Date header; see ``NormalizedMessage.date_status``.

    A date without a zone (``-0000``) is taken as UTC, as :rfc:`5322#section-3.3`
    says. Nothing is guessed: an unreadable date is ``invalid`` with no value.
    """
    if value is None:
        return None, "missing"
    value = value.strip()
    if not value:
        return None, "invalid"
    try:
        parsed = parsedate_to_datetime(value)
        status = "ok"
    except (TypeError, ValueError, IndexError, OverflowError):
        parsed, status = None, "nonstandard"
        if _ISO.match(value):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                parsed = None
    if parsed is None:
        return None, "invalid"
    try:
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC), status
    except (ValueError, OverflowError):
        return None, "invalid"


# --------------------------------------------------------------------------- lists, bulk

_LIST_ID = re.compile(r"<([^<>\s]+)>")


def list_id(value: str | None) -> str | None:
    """The list identifier of a List-Id header (:rfc:`2919`), lower-cased, without brackets."""
    if not value:
        return None
    match = _LIST_ID.search(value)
    found = match.group(1) if match else value.strip().split()[-1] if value.strip() else ""
    return found.lower()[:255] or None


def token(value: str | None, limit: int = 64) -> str | None:
    """The leading keyword of a header such as Auto-Submitted or Precedence, lower-cased."""
    if not value:
        return None
    word = re.split(r"[;\s(]", value.strip(), maxsplit=1)[0].lower()
    return word[:limit] or None
