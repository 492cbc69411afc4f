"""Folder listing grammar: NAMESPACE, LIST, STATUS and ESEARCH answers, and namespaces.

Why this exists: the listing decides which folders a sync even looks at, and
it must keep each name exactly as the server spells it (modified UTF-7, the
key the archive stores) while showing people the decoded form. Parsing lives
here, pure and tested on byte fixtures, so ``imap.py`` only moves bytes.

Public API (private to ``syncer.sources``): :class:`Namespaces`,
:class:`ListEntry`, :class:`ListCollector`, :func:`list_commands`,
:func:`status_items`, :func:`folder_status`, :func:`parse_namespace`,
:func:`parse_list`, :func:`parse_status`, :func:`parse_search`,
:func:`matches_globs`, :func:`mailbox_id_command`, :func:`valid_object_id`,
:func:`parse_status_or_warn`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import structlog

from syncer.model import FolderStatus
from syncer.sources.folder_names import FolderNaming
from syncer.sources.imap.connection import Arg, astring
from syncer.sources.imap.parser import (
    MAX_ANSWER_UIDS,
    Response,
    ResponseError,
    Value,
    decode_mutf7,
    parse_tokens,
    parse_uid_set,
)

#: RFC 6154 (and RFC 8457 \Important) special-use attributes, lower-cased.
SPECIAL_USE = frozenset(
    {"\\all", "\\archive", "\\drafts", "\\flagged", "\\junk", "\\sent", "\\trash", "\\important"}
)
_UNSELECTABLE = frozenset({"\\noselect", "\\nonexistent"})
KINDS = ("personal", "other", "shared")

log = structlog.get_logger(__name__)


def name_to_str(raw: bytes) -> str:
    """The wire name as str, losslessly (8-bit names survive as surrogate escapes)."""
    return raw.decode("utf-8", "surrogateescape")


def name_to_bytes(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def display_name(raw: bytes) -> str:
    """Modified UTF-7 decoded, the whole wire name (``&ANw-berweisungen`` ->
    ``Überweisungen``): for log lines about a name no namespace is known for. The name
    people see is :meth:`Namespaces.naming`'s ``shown()``."""
    return decode_mutf7(raw)


@dataclass(frozen=True, slots=True)
class Namespaces:
    """The account's namespaces as ``(kind, prefix, delimiter)``, kind in KINDS."""

    entries: tuple[tuple[str, str, str | None], ...]

    @classmethod
    def default(cls, delimiter: str | None = None) -> Namespaces:
        """For servers without NAMESPACE: everything is personal."""
        return cls((("personal", "", delimiter),))

    def prefixes(self, kinds: Iterable[str]) -> list[str]:
        wanted = set(kinds)
        return [prefix for kind, prefix, _ in self.entries if kind in wanted]

    def naming(self) -> FolderNaming:
        """The translation between wire names and shown names for these namespaces
        (:mod:`syncer.sources.folder_names`): the first personal namespace's prefix and
        delimiter, the others' prefixes."""
        personal = next((e for e in self.entries if e[0] == "personal"), ("personal", "", None))
        others = tuple((pre, delim) for kind, pre, delim in self.entries if kind != "personal")
        return FolderNaming(personal[1], personal[2], others)

    def classify(self, name: str) -> str:
        """The kind of the namespace whose prefix matches ``name`` best (longest)."""
        if name.upper() == "INBOX":
            return "personal"
        best_kind, best_len = "personal", -1
        for kind, prefix, delimiter in self.entries:
            # The namespace root itself ("shared" for prefix "shared/") belongs to it too.
            root = prefix[: -len(delimiter)] if delimiter and prefix.endswith(delimiter) else None
            if (name.startswith(prefix) or name == root) and len(prefix) > best_len:
                best_kind, best_len = kind, len(prefix)
        return best_kind


def parse_namespace(response: Response) -> Namespaces:
    """``* NAMESPACE (("" "/")) (("shared/" "/")) NIL``.

    :raises ResponseError: when the answer does not have three parts.
    """
    values = parse_tokens(response.text, len(b"* NAMESPACE"), response.literals)
    if len(values) != 3:
        raise ResponseError(f"NAMESPACE with {len(values)} parts: {response.text[:120]!r}")
    entries: list[tuple[str, str, str | None]] = []
    for kind, part in zip(KINDS, values, strict=True):
        if part is None:
            continue
        if not isinstance(part, list):
            raise ResponseError(f"malformed NAMESPACE part {part!r}")
        for desc in part:
            if not isinstance(desc, list) or len(desc) < 2 or not isinstance(desc[0], bytes):
                raise ResponseError(f"malformed NAMESPACE descriptor {desc!r}")
            delim = desc[1]
            if delim is not None and not isinstance(delim, bytes):
                raise ResponseError(f"malformed NAMESPACE delimiter {delim!r}")
            entries.append(
                (kind, name_to_str(desc[0]), delim.decode("ascii", "replace") if delim else None)
            )
    return Namespaces(tuple(entries))


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One ``* LIST`` (or ``* LSUB``) line."""

    raw_name: bytes
    delimiter: str | None
    attributes: tuple[str, ...]  # as sent, e.g. ("\\HasNoChildren", "\\Sent")

    @property
    def name(self) -> str:
        return name_to_str(self.raw_name)

    @property
    def selectable(self) -> bool:
        return not any(a.lower() in _UNSELECTABLE for a in self.attributes)

    @property
    def special_use(self) -> str | None:
        for attribute in self.attributes:
            if attribute.lower() in SPECIAL_USE:
                return attribute
        return None


def parse_list(response: Response) -> ListEntry:
    """``* LIST (\\HasNoChildren \\Sent) "/" Sent`` (extended data items are ignored).

    :raises ResponseError: when it does not look like a LIST response.
    """
    text = response.text
    space = text.find(b" ", 2)
    values = parse_tokens(text, space, response.literals)
    if len(values) < 3 or not isinstance(values[0], list):
        raise ResponseError(f"malformed LIST response {text[:120]!r}")
    attrs, delim, name = values[0], values[1], values[2]
    if not all(isinstance(a, bytes) for a in attrs):
        raise ResponseError(f"malformed LIST attributes {attrs!r}")
    if delim is not None and not isinstance(delim, bytes):
        raise ResponseError(f"malformed LIST delimiter {delim!r}")
    if not isinstance(name, bytes):
        raise ResponseError(f"malformed LIST name {name!r}")
    return ListEntry(
        raw_name=name,
        delimiter=delim.decode("ascii", "replace") if delim else None,
        attributes=tuple(a.decode("ascii", "replace") for a in attrs if isinstance(a, bytes)),
    )


def parse_status(response: Response) -> tuple[bytes, dict[str, int | str]]:
    """``* STATUS name (MESSAGES 3 UIDNEXT 4 MAILBOXID (F123))`` -> (name, items).

    :raises ResponseError: on a malformed answer.
    """
    values = parse_tokens(response.text, len(b"* STATUS"), response.literals)
    if len(values) != 2 or not isinstance(values[0], bytes) or not isinstance(values[1], list):
        raise ResponseError(f"malformed STATUS response {response.text[:120]!r}")
    items: dict[str, int | str] = {}
    pairs: list[Value] = values[1]
    if len(pairs) % 2:
        raise ResponseError(f"odd STATUS item list {response.text[:120]!r}")
    for i in range(0, len(pairs), 2):
        key, value = pairs[i], pairs[i + 1]
        if not isinstance(key, bytes):
            raise ResponseError(f"malformed STATUS item {key!r}")
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], bytes):
            items[key.decode("ascii").upper()] = value[0].decode("ascii", "replace")
        elif isinstance(value, bytes) and value.isdigit():
            items[key.decode("ascii").upper()] = int(value)
        else:
            raise ResponseError(f"malformed STATUS value {key!r} {value!r}")
    return values[0], items


def parse_search(
    responses: Sequence[Response],
    *,
    into: set[int] | None = None,
    max_size: int = MAX_ANSWER_UIDS,
) -> set[int]:
    """UIDs from ``* SEARCH 1 2 3`` lines or ``* ESEARCH (TAG "x") UID ALL 1:3,7``.

    Callers feed responses as they arrive (``into`` collects them), so an answer is
    never held as text; past ``max_size`` UIDs in all it is refused.

    :raises ResponseError: on a malformed answer, or one naming more than ``max_size`` UIDs.
    """
    uids: set[int] = set() if into is None else into
    for response in responses:
        text = response.text
        head = text[:10].upper()
        if head.startswith(b"* SEARCH"):
            for number in text[len(b"* SEARCH") :].split():
                if number.startswith(b"("):  # (MODSEQ n) trailer
                    break
                if not number.isdigit():
                    raise ResponseError(f"malformed SEARCH response {text[:80]!r}")
                uids.add(int(number))
            if len(uids) > max_size:
                raise ResponseError(f"SEARCH answered with more than {max_size:,} UIDs")
        elif head.startswith(b"* ESEARCH"):
            values = parse_tokens(text, len(b"* ESEARCH"), response.literals)
            for i, value in enumerate(values):
                if isinstance(value, bytes) and value.upper() == b"ALL":
                    if i + 1 >= len(values) or not isinstance(values[i + 1], bytes):
                        raise ResponseError(f"malformed ESEARCH ALL in {text[:80]!r}")
                    parse_uid_set(values[i + 1], into=uids, max_size=max_size)  # type: ignore[arg-type]
    return uids


def matches_globs(display: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Include (any glob; empty means all) minus exclude, over the display name.

    ``fnmatchcase``: ``*`` also matches the hierarchy delimiter, so ``Archive/*``
    takes every level below Archive.
    """
    if include and not any(fnmatch.fnmatchcase(display, g) for g in include):
        return False
    return not any(fnmatch.fnmatchcase(display, g) for g in exclude)


def status_items(capabilities: frozenset[str]) -> bytes:
    """STATUS items to ask for: HIGHESTMODSEQ only with CONDSTORE (Dovecot answers BAD to
    an item it does not advertise).

    Never MAILBOXID: Cyrus 3.6 answers it with garbage bytes (CR, LF, ``)`` included)
    when it is asked together with any counter; :func:`mailbox_id_command` asks it alone.
    """
    items = [b"UIDVALIDITY", b"UIDNEXT", b"MESSAGES"]
    if "CONDSTORE" in capabilities or "QRESYNC" in capabilities:
        items.append(b"HIGHESTMODSEQ")
    if "STATUS=SIZE" in capabilities:
        # RFC 8438: the folder's size in bytes, for the progress total before any download.
        items.append(b"SIZE")
    return b" ".join(items)


def mailbox_id_command(name: str) -> list[Arg]:
    """``STATUS name (MAILBOXID)``: the id asked on its own, the form Cyrus answers right."""
    return [b"STATUS ", astring(name), b" (MAILBOXID)"]


#: RFC 8474 section 3: ``objectid = 1*255(ALPHA / DIGIT / "_" / "-")``.
_OBJECT_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")


def valid_object_id(value: object) -> str | None:
    """*value* when it is an RFC 8474 object id, else None (never store a server's garbage)."""
    if isinstance(value, str) and _OBJECT_ID.fullmatch(value):
        return value
    return None


def list_commands(
    patterns: Sequence[str],
    capabilities: frozenset[str],
    *,
    subscribed_only: bool,
    list_status: bool,
) -> list[list[Arg]]:
    """The LIST (and LSUB) commands for ``patterns``.

    With LIST-EXTENDED (RFC 5258) one command takes every pattern, the
    ``(SUBSCRIBED)`` selection and the return options SPECIAL-USE (RFC 6154) and
    STATUS (RFC 5819, when ``list_status``). Without it: one LIST per pattern,
    plus one LSUB per pattern for ``subscribed_only``.
    """
    args = [astring(p) for p in patterns]
    if "LIST-EXTENDED" not in capabilities:
        commands: list[list[Arg]] = [[b'LIST "" ', a] for a in args]
        if subscribed_only:
            commands.extend([b'LSUB "" ', a] for a in args)
        return commands
    command: list[Arg] = [b"LIST (SUBSCRIBED) " if subscribed_only else b"LIST ", b'"" ']
    if len(args) == 1:
        command.append(args[0])
    else:
        command.append(b"(")
        for i, arg in enumerate(args):
            if i:
                command.append(b" ")
            command.append(arg)
        command.append(b")")
    returns = [b"SPECIAL-USE"] if "SPECIAL-USE" in capabilities else []
    if list_status:
        returns.append(b"STATUS (" + status_items(capabilities) + b")")
    if returns:
        command.append(b" RETURN (" + b" ".join(returns) + b")")
    return [command]


class ListCollector:
    """Collects the LIST, LSUB and STATUS responses of a listing, in server order."""

    def __init__(self) -> None:
        self.entries: dict[bytes, ListEntry] = {}
        self.subscribed: set[bytes] = set()
        self.statuses: dict[bytes, dict[str, int | str]] = {}

    def __call__(self, response: Response, _index: int = 0) -> None:
        head = response.text[:9].upper()
        if head.startswith(b"* LIST "):
            entry = parse_list(response)
            self.entries.setdefault(entry.raw_name, entry)
        elif head.startswith(b"* LSUB "):
            entry = parse_list(response)
            if entry.selectable:  # \Noselect in LSUB: only children are subscribed
                self.subscribed.add(entry.raw_name)
        elif head.startswith(b"* STATUS "):
            parsed = parse_status_or_warn(response)
            if parsed is not None:
                self.statuses[parsed[0]] = parsed[1]


def parse_status_or_warn(response: Response) -> tuple[bytes, dict[str, int | str]] | None:
    """:func:`parse_status`, or None with a warning: one folder's malformed STATUS line
    costs that folder its status (it is skipped this run), never the whole account."""
    try:
        return parse_status(response)
    except ResponseError as exc:
        log.warning(
            "imap.status.malformed",
            answer=response.text[:120].decode("ascii", "replace"),
            error=str(exc),
        )
        return None


def folder_status(
    entry: ListEntry, kind: str, shown: str, status: dict[str, int | str] | None
) -> FolderStatus:
    """The FolderStatus for one listed folder (no status for unselectable ones)."""
    if not entry.selectable or status is None:
        return FolderStatus(
            name=entry.name,
            display_name=shown,
            delimiter=entry.delimiter,
            namespace=kind,
            special_use=entry.special_use,
            selectable=entry.selectable,
        )

    def number(key: str) -> int | None:
        value = status.get(key)
        return value if isinstance(value, int) else None

    modseq = number("HIGHESTMODSEQ")
    mailbox_id = valid_object_id(status.get("MAILBOXID"))
    return FolderStatus(
        name=entry.name,
        display_name=shown,
        delimiter=entry.delimiter,
        namespace=kind,
        special_use=entry.special_use,
        selectable=True,
        uidvalidity=number("UIDVALIDITY"),
        uidnext=number("UIDNEXT"),
        highestmodseq=modseq if modseq else None,  # 0: no usable mod-sequence
        messages=number("MESSAGES"),
        mailbox_id=mailbox_id if isinstance(mailbox_id, str) else None,
        size=number("SIZE"),
    )
