"""IMAP as a destination: :class:`IMAPTarget` creates folders and APPENDs messages.

Why it is built this way: a migration (``syncer push``) writes thousands of
messages into another account, and one APPEND per round trip would spend most
of its time waiting. :class:`IMAPTarget` reads through an
:class:`~syncer.sources.imap.source.IMAPSource` and writes through its public
connection, :class:`~syncer.sources.imap.session.IMAPSession` (so the session
code -- TLS, login, OAuth2, capabilities, error mapping -- is the one sync
uses), sending APPENDs through the same command runner
(:func:`~syncer.sources.imap.connection.run_commands`):
a batch of messages goes out as one MULTIAPPEND (:rfc:`3502`) command, or as
APPEND commands back to back, each message a LITERAL+ literal (:rfc:`7888`)
when the server offers it, so a batch costs one round trip; without LITERAL+
every literal waits for the server's ``+``, which still works everywhere. With
UIDPLUS (:rfc:`4315`) the answer carries ``[APPENDUID uidvalidity uids]``.

Folder names are the wire form (modified UTF-7) throughout, as in the rest of
syncer. Flags go out as the archive recorded them, without ``\\Recent`` (a
server sets it, a client cannot) and without anything that is not a valid
flag atom (a keyword with a space, from a file import, would make the whole
command BAD); INTERNALDATE goes out in UTC.

This adapter never sees the archive: push (:mod:`syncer.transfer.push`) hands it bytes,
flags and dates and gets UIDs back.

Public API: :class:`IMAPTarget`, :class:`AppendItem`, :class:`AppendResult`,
:func:`append_date`, :func:`flag_list`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from syncer.errors import SourceError
from syncer.model import FolderStatus, HeaderFingerprint
from syncer.sources.imap.connection import Arg, CommandFailed, Literal, astring
from syncer.sources.imap.parser import Completion, ResponseError, compress_uids, parse_uid_set
from syncer.sources.imap.session import check_ok
from syncer.sources.imap.settings import IMAPSettings
from syncer.sources.imap.source import IMAPSource

__all__ = ["AppendItem", "AppendResult", "IMAPTarget", "append_date", "flag_list"]

log = structlog.get_logger(__name__)

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# RFC 3501 flag: "\" atom, or a keyword atom; atom-specials excluded (and "]" for safety).
_FLAG = re.compile(r"\\?[^\x00-\x20\x7f-\U0010ffff(){%*\"\\\]]+")


def append_date(when: datetime) -> bytes:
    """``"04-Jan-2024 10:00:00 +0000"``: an RFC 3501 date-time in UTC, locale-proof."""
    moment = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return (
        f'"{moment.day:02d}-{_MONTHS[moment.month - 1]}-{moment.year:04d} {moment:%H:%M:%S} +0000"'
    ).encode("ascii")


def flag_list(flags: Iterable[str]) -> tuple[str, ...]:
    """The flags an APPEND may carry: valid atoms, no ``\\Recent``, sorted, once each."""
    kept = {f for f in flags if f.lower() != "\\recent" and _FLAG.fullmatch(f)}
    return tuple(sorted(kept))


@dataclass(frozen=True, slots=True)
class AppendItem:
    """One message to APPEND: the exact bytes, its flags and INTERNALDATE."""

    raw: bytes
    flags: tuple[str, ...] = ()
    internaldate: datetime | None = None


@dataclass(frozen=True, slots=True)
class AppendResult:
    """How one APPEND ended: ``uid`` from APPENDUID (None without UIDPLUS), or ``error``."""

    ok: bool
    uid: int | None = None
    uidvalidity: int | None = None
    error: str | None = None


class IMAPTarget:
    """Folder creation and pipelined APPEND on one IMAP connection.

    :param settings: where and how to connect (:class:`IMAPSettings`); the
        connection opens on first use, or with :meth:`connect`, and is closed by
        :meth:`close`.
    """

    def __init__(self, settings: IMAPSettings) -> None:
        #: Reads the target's folders (LIST, EXAMINE, fingerprints) as sync reads a source.
        self.source = IMAPSource(settings)
        self._session = self.source.session

    @classmethod
    def open(cls, settings: IMAPSettings) -> IMAPTarget:
        """Construct, then :meth:`connect`.

        :raises SourceError: (and subclasses) when connecting or logging in fails.
        """
        target = cls(settings)
        target.connect()
        return target

    def connect(self) -> IMAPTarget:
        """Connect and log in (idempotent).

        :raises SourceError: (and subclasses) when connecting or logging in fails.
        """
        self._session.connect()
        return self

    @property
    def capabilities(self) -> frozenset[str]:
        return self._session.connect().capabilities

    def close(self) -> None:
        self._session.close()

    def personal_namespace(self) -> tuple[str, str | None]:
        """``(prefix, delimiter)`` of the personal namespace (``("", "/")`` on Dovecot).

        :raises SourceError:
        """
        with self._session.map_errors():
            namespaces = self._session.namespaces()
        for kind, prefix, delimiter in namespaces.entries:
            if kind == "personal":
                return prefix, delimiter
        return "", None

    def list_folders(self) -> list[FolderStatus]:
        """The personal folders, with special-use attributes and STATUS.

        :raises SourceError:
        """
        return self.source.list_folders(with_status=True)

    def create_folder(self, name: str) -> None:
        """CREATE ``name`` (and SUBSCRIBE to it, as mail clients expect); a folder that
        exists already is fine.

        :raises SourceError: when the server refuses for another reason.
        """
        with self._session.map_errors(name):
            create, subscribe = self._session.run(
                [[b"CREATE ", astring(name)], [b"SUBSCRIBE ", astring(name)]]
            )
            # Servers without RFC 5530's ALREADYEXISTS say so in words: look before failing.
            if (
                create.status != "OK"
                and create.code != "ALREADYEXISTS"
                and name not in {f.name for f in self.source.list_folders(with_status=False)}
            ):
                raise CommandFailed("CREATE", create)
            if subscribe.status != "OK":
                log.warning("imap.subscribe.failed", folder=name, answer=subscribe.text)
        log.info("imap.folder.created", folder=name)

    def fingerprints(
        self, folder: str, known: Collection[int] = (), *, only: Collection[int] | None = None
    ) -> list[HeaderFingerprint]:
        """EXAMINE ``folder``; return the header fingerprints (size, SHA-256 of
        ``BODY[HEADER]``, Message-ID, INTERNALDATE) of its messages, except those whose
        UID is in ``known`` -- or of exactly the UIDs ``only``.

        One ``UID SEARCH`` lists the UIDs (none with ``only``), one pipelined FETCH
        reads the headers of the rest (none at all when every message is known).

        :raises SourceError:
        """
        selected = self.source.select(folder)
        if selected.exists == 0:
            return []
        if only is not None:
            return self.source.fingerprints(only)
        skip = set(known)
        uids = [uid for uid in self.source.uids() if uid not in skip]
        return self.source.fingerprints(uids) if uids else []

    def remove(self, folder: str, uidvalidity: int, uids: Sequence[int]) -> list[int]:
        """Expunge exactly ``uids`` (UID EXPUNGE; see :meth:`IMAPSource.expunge`).

        :returns: the UIDs now gone.
        :raises SourceError: without UIDPLUS, or when the UIDVALIDITY changed.
        """
        return self.source.expunge(folder, uidvalidity, uids)

    def append(self, folder: str, items: Sequence[AppendItem]) -> list[AppendResult]:
        """APPEND each of ``items`` to ``folder``; one result per item, in order.

        With MULTIAPPEND (:rfc:`3502`) the whole batch is one command, which the
        server stores in one transaction (Dovecot: one index and uidlist update
        instead of one per message); its APPENDUID carries a UID set. If that
        command is refused (it is all or nothing), or without MULTIAPPEND, each
        message is its own APPEND, all in flight at once, so a refused message
        does not stop the others. The caller bounds the batch (a few megabytes):
        everything is written before any answer is read, and answers are small.

        :raises SourceError: when the connection fails (the batch's outcome is
            then unknown: a re-run finds what arrived by its fingerprint).
        """
        if not items:
            return []
        self._leave_if_selected(folder)
        mailbox = astring(folder)
        if len(items) > 1 and "MULTIAPPEND" in self.capabilities:
            command: list[Arg] = [b"APPEND ", mailbox]
            for item in items:
                command.append(b" ")
                command.extend(_message_args(item))
            with self._session.map_errors(folder):
                (completion,) = self._session.run([command])
            if completion.status == "OK":
                return _multi_results(completion, len(items))
            log.info("imap.multiappend.refused", folder=folder, answer=completion.text)
        commands = [[b"APPEND ", mailbox, b" ", *_message_args(item)] for item in items]
        with self._session.map_errors(folder):
            completions = self._session.run(commands)
        return [_single_result(completion) for completion in completions]

    def _leave_if_selected(self, folder: str) -> None:
        """Leave ``folder`` when it is the one EXAMINEd (by :meth:`fingerprints`).

        Courier refuses APPEND into the folder selected read-only (``NO Current box
        is selected READ-ONLY``), so push and restore failed for every existing folder
        there. UNSELECT where offered; else CLOSE, which expunges nothing after EXAMINE
        (:rfc:`3501` 6.4.2).
        """
        session = self._session
        if not session.connected or session.selected != folder:
            return
        command = b"UNSELECT" if "UNSELECT" in self.capabilities else b"CLOSE"
        with session.map_errors(folder):
            session.run_ok(command.decode(), [[command]])
        session.left()

    def add_labels(self, folder: str, labels: dict[int, tuple[str, ...]]) -> None:
        """Gmail: label the messages ``uid -> labels`` of ``folder`` (``UID STORE
        +X-GM-LABELS.SILENT``, one command per distinct label set, pipelined).

        :raises SourceError: without X-GM-EXT-1, or when the server refuses.
        """
        wanted = {uid: names for uid, names in labels.items() if names}
        if not wanted:
            return
        if "X-GM-EXT-1" not in self.capabilities:
            raise SourceError(
                f"{self.source.settings.host} has no X-GM-EXT-1: labels cannot be stored there.",
                account=self.source.settings.account or None,
                folder=folder,
            )
        groups: dict[tuple[str, ...], list[int]] = {}
        for uid, names in wanted.items():
            groups.setdefault(tuple(sorted(names)), []).append(uid)
        commands: list[list[Arg]] = [[b"SELECT ", astring(folder)]]
        for names, uids in sorted(groups.items()):
            listed: list[Arg] = []
            for index, name in enumerate(names):
                listed.extend([b" "] if index else [])
                listed.append(astring(name))
            for uid_set in compress_uids(uids):
                commands.append([b"UID STORE ", uid_set, b" +X-GM-LABELS.SILENT (", *listed, b")"])
        with self._session.map_errors(folder):
            completions = self._session.run(commands)
            # SELECT (read-write) replaced whatever was selected; tell the session so.
            self._session.entered(None, readonly=False)
            check_ok("UID STORE +X-GM-LABELS", completions)


def _message_args(item: AppendItem) -> list[Arg]:
    """``(flags) "date" {n}<bytes>``: one message of an APPEND command."""
    parts: list[Arg] = [b"(" + " ".join(flag_list(item.flags)).encode("ascii") + b") "]
    if item.internaldate is not None:
        parts.append(append_date(item.internaldate) + b" ")
    parts.append(Literal(item.raw))
    return parts


def _appenduid(completion: Completion) -> tuple[int, bytes] | None:
    if completion.code != "APPENDUID" or not completion.code_data:
        return None
    uidvalidity, _, uids = completion.code_data.partition(" ")
    if not uidvalidity.isdigit() or not uids:
        return None
    return int(uidvalidity), uids.strip().encode("ascii", "replace")


def _single_result(completion: Completion) -> AppendResult:
    if completion.status != "OK":
        return AppendResult(False, error=f"{completion.status} {completion.text}".strip())
    found = _appenduid(completion)
    if found is None or not found[1].isdigit():
        return AppendResult(True)
    return AppendResult(True, uid=int(found[1]), uidvalidity=found[0])


def _multi_results(completion: Completion, count: int) -> list[AppendResult]:
    """Results of a MULTIAPPEND: the APPENDUID set's UIDs, in order, one per message."""
    found = _appenduid(completion)
    uids: list[int] = []
    if found is not None:
        try:
            uids = sorted(parse_uid_set(found[1]))
        except ResponseError:
            uids = []
    if len(uids) != count:  # no UIDPLUS, or an answer we cannot map: no UIDs
        return [AppendResult(True) for _ in range(count)]
    assert found is not None
    return [AppendResult(True, uid=uid, uidvalidity=found[0]) for uid in uids]
